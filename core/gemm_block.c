// gemm_block.c: small products (the attention kernel's blocks of up to 64 rows) on the calling
// thread. fp32 is OpenBLAS's sgemm; bf16 is one of our own kernels, because a oneDNN call costs
// more than a 64 x 64 x 64 block and a batch of blocks would need the whole window gathered first:
//   avx512bf16: vdpbf16ps, 4 x 64 sums in registers (CPUs with AVX512-BF16 and no AMX);
//   amx: tdpbf16ps on AMX tiles, 32 x 32 sums in four tiles (CPUs with AMX).
//
// Both round both operands to bfloat16 (nearest even, as vcvtneps2bf16 does: it also flushes
// subnormal inputs to zero) while packing them into the layout the instructions read:
//   A as pairs (a[i][2p], a[i][2p+1]), one 32-bit word each: row i holds its pairs in order;
//   B as VNNI rows: word (p, j) = (b[2p][j], b[2p+1][j]), a row of words per pair of B's rows.
// Each sum runs over p in an order fixed by the shape, so the bits are fixed by the shape.
//
// Which kernel a CPU runs is measured, not assumed: on AMD Zen 5 (AVX512-BF16, no AMX) the
// avx512bf16 kernel halves the attention kernel's time and runs the B6 step 1.1-1.2x faster than
// sgemm blocks; on Intel Sapphire Rapids vdpbf16ps is no faster than fp32 FMAs (oneDNN held to
// AVX512-BF16 there ran the 2048^3 reference at 143-161 GFLOP/s against sgemm's 168), and the B6
// step ran 3-8% slower with that kernel than with sgemm blocks; AMX tiles there take a third off
// the attention kernel's excess at 16 threads and run the step 3-7% faster than sgemm blocks
// (BENCH.md, "bf16 attention blocks" and "AMX tiles").
#include "gemm.h"

#include <cblas.h>
#include <cpuid.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

#if defined(__x86_64__) && defined(REFORMER_DNNL)  // bf16 runs only in a build with oneDNN
#define HAVE_BF16_KERNEL 1
#else
#define HAVE_BF16_KERNEL 0
#endif

#if HAVE_BF16_KERNEL
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))
#define ROWS 4  // rows of C a pass keeps in registers (4 x 4 vectors of 16 sums)

// Packed operands of this thread's last product (grown as needed, never shrunk).
static __thread uint32_t *pack;
static __thread size_t pack_len;

static uint32_t *pack_space(size_t words) {
    if (words > pack_len) {
        xfree(pack);
        pack = xmalloc(words * sizeof(uint32_t));
        pack_len = words;
    }
    return pack;
}

// Row r of n floats (n <= 16 past x) as 16 bf16; the missing ones 0.
TARGET static inline __m256i bf16_row16(const float *x, int n) {
    __m512 v = n >= 16 ? _mm512_loadu_ps(x) : _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), x);
    return (__m256i)_mm512_cvtneps_pbh(v);
}

// n floats rounded to bf16 (the missing lanes of the last 16 not written).
TARGET static void round_row(uint16_t *dst, const float *src, int n) {
    int k = 0;
    for (; k + 16 <= n; k += 16) _mm256_storeu_si256((__m256i *)(dst + k), bf16_row16(src + k, 16));
    if (k < n) _mm256_mask_storeu_epi16(dst + k, (__mmask16)((1u << (n - k)) - 1), bf16_row16(src + k, n - k));
}

// Rows of K contiguous values become rows of (K + 1) / 2 pair words, dw words apart:
// dst[r][p] = (x[r][2p], x[r][2p+1]); an odd K's last word takes a zero.
TARGET static void pack_pairs_along_rows(uint32_t *dst, size_t dw, const float *x, size_t ld, int rows, int K) {
    for (int r = 0; r < rows; r++) {
        uint16_t *d = (uint16_t *)(dst + (size_t)r * dw);
        round_row(d, x + (size_t)r * ld, K);
        if (K & 1) d[K] = 0;
    }
}

// Pairs of rows of x (rows 2p and 2p+1, K rows in all, n values each) become rows of n words:
// dst[p][j] = (x[2p][j], x[2p+1][j]); columns past n up to np are zero.
TARGET static void pack_pairs_across_rows(uint32_t *dst, const float *x, size_t ld, int K, int n, int np) {
    const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int p = 0; p < (K + 1) / 2; p++) {
        const float *r0 = x + (size_t)(2 * p) * ld, *r1 = r0 + ld;
        int two = 2 * p + 1 < K;
        for (int j = 0; j < np; j += 16) {
            int m = imin(16, imax(0, n - j));
            __mmask16 k = (__mmask16)((1u << m) - 1);
            __m512 lo = _mm512_maskz_loadu_ps(k, r0 + j), hi = two ? _mm512_maskz_loadu_ps(k, r1 + j) : _mm512_setzero_ps();
            __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // low half lo's, high half hi's
            _mm512_storeu_si512(dst + (size_t)p * np + j, _mm512_permutexvar_epi16(mix, both));
        }
    }
}

// As pack_pairs_along_rows, from rows already in bf16: each row's values are its pair words.
TARGET static void pack_pairs_along_rows16(uint32_t *dst, size_t dw, const uint16_t *x, size_t ld, int rows, int K) {
    for (int r = 0; r < rows; r++) {
        uint16_t *d = (uint16_t *)(dst + (size_t)r * dw);
        memcpy(d, x + (size_t)r * ld, (size_t)K * sizeof(uint16_t));
        if (K & 1) d[K] = 0;
    }
}

// As pack_pairs_across_rows, from rows already in bf16.
TARGET static void pack_pairs_across_rows16(uint32_t *dst, const uint16_t *x, size_t ld, int K, int n, int np) {
    for (int p = 0; p < (K + 1) / 2; p++) {
        const uint16_t *r0 = x + (size_t)(2 * p) * ld, *r1 = r0 + ld;
        int two = 2 * p + 1 < K;
        for (int j = 0; j < np; j += 16) {
            int m = imin(16, imax(0, n - j));
            __mmask16 k = (__mmask16)((1u << m) - 1);
            __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, r0 + j));
            __m512i hi = two ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, r1 + j)) : _mm512_setzero_si512();
            _mm512_storeu_si512(dst + (size_t)p * np + j, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

// Words (r, c) of src (rows x cols, sld apart) to dst (c, r) (dld apart), for c < cols and r up to
// rows rounded up to 16 (zeros past rows): 16 x 16 blocks, each in four butterfly stages.
TARGET static void transpose_words(uint32_t *dst, size_t dld, const uint32_t *src, size_t sld, int rows, int cols) {
    __m512i lo[4], hi[4];  // stage s pairs rows i and i + h (h = 8, 4, 2, 1) in groups of 2h words
    for (int s = 0, h = 8; s < 4; s++, h /= 2) {
        int a[16], b[16];
        for (int e = 0; e < 16; e++) {
            int g = e / (2 * h) * 2 * h, w = e % (2 * h), from = w < h ? 0 : 16, at = w % h;
            a[e] = from + g + at;      // the first halves of the groups of both rows
            b[e] = from + g + h + at;  // the second halves
        }
        lo[s] = _mm512_loadu_si512(a);
        hi[s] = _mm512_loadu_si512(b);
    }
    for (int r0 = 0; r0 < rows; r0 += 16)
        for (int c0 = 0; c0 < cols; c0 += 16) {
            __m512i x[16];
            int n = imin(16, cols - c0);
            for (int i = 0; i < 16; i++)
                x[i] = r0 + i < rows ? _mm512_maskz_loadu_epi32((__mmask16)((1u << n) - 1), src + (size_t)(r0 + i) * sld + c0)
                                     : _mm512_setzero_si512();
            for (int s = 0, h = 8; s < 4; s++, h /= 2)
                for (int i = 0; i < 16; i++) {
                    if (i & h) continue;
                    __m512i p = x[i], q = x[i + h];
                    x[i] = _mm512_permutex2var_epi32(p, lo[s], q);
                    x[i + h] = _mm512_permutex2var_epi32(p, hi[s], q);
                }
            for (int i = 0; i < n; i++) _mm512_storeu_si512(dst + (size_t)(c0 + i) * dld + r0, x[i]);
        }
}

// C rows [i0, i0 + R), columns [j0, j0 + n) = alpha sums + beta C; rows of sums tw floats apart.
static void store_sums(const GemmOp *op, const float *sums, int tw, int i0, int j0, int R, int n) {
    for (int r = 0; r < R; r++) {
        float *c = op->C + (size_t)(i0 + r) * op->ldc + j0;
        const float *t = sums + (size_t)r * tw;
        if (op->beta == 0.0f)
            for (int j = 0; j < n; j++) c[j] = op->alpha * t[j];
        else
            for (int j = 0; j < n; j++) c[j] = op->alpha * t[j] + op->beta * c[j];
    }
}

// C rows [i0, i0 + R), column vectors [0, NV) of the np-wide packed B: sums over kp pair words.
// a: the word (i, p) at a[i * ai + p * ap]. Written to tile (R, NV * 16).
TARGET static inline __attribute__((always_inline)) void micro(float *tile, const uint32_t *a, size_t ai, size_t ap,
                                                               const uint32_t *b, int np, int kp, int R, int NV) {
    __m512 acc[ROWS][4];
    for (int r = 0; r < ROWS; r++)
        for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512 bv[4];
        for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps((const float *)(b + (size_t)p * np + 16 * v));
        for (int r = 0; r < R; r++) {
            __m512 av = (__m512)_mm512_set1_epi32((int)a[r * ai + p * ap]);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)av, (__m512bh)bv[v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(tile + (size_t)r * 64 + 16 * v, acc[r][v]);
}

// The compiler unrolls each (R, NV) this dispatch names into registers.
TARGET static void micro_any(float *tile, const uint32_t *a, size_t ai, size_t ap, const uint32_t *b, int np, int kp,
                             int R, int NV) {
#define CASE(r, v)                                        \
    if (R == r && NV == v) {                              \
        micro(tile, a, ai, ap, b, np, kp, r, v);          \
        return;                                           \
    }
    CASE(4, 4) CASE(4, 3) CASE(4, 2) CASE(4, 1)
    CASE(3, 4) CASE(3, 3) CASE(3, 2) CASE(3, 1)
    CASE(2, 4) CASE(2, 3) CASE(2, 2) CASE(2, 1)
    CASE(1, 4) CASE(1, 3) CASE(1, 2) CASE(1, 1)
#undef CASE
}

TARGET static void gemm_block_bf16(const GemmOp *op) {
    int M = op->M, N = op->N, K = op->K, kp = (K + 1) / 2, np = (N + 15) / 16 * 16, mp = (M + 15) / 16 * 16;
    // B stored (K, N) packs directly; B stored (N, K) packs along its rows, then turns
    size_t bwords = (size_t)kp * np, awords = (size_t)mp * kp;
    uint32_t *b = pack_space(bwords + awords + (op->tb ? (size_t)np * kp : 0)), *a = b + bwords;
    if (!op->tb) {
        if (op->B16) pack_pairs_across_rows16(b, op->B16, op->ldb, K, N, np);
        else pack_pairs_across_rows(b, op->B, op->ldb, K, N, np);
    } else {
        uint32_t *rows = a + awords;  // (N, kp)
        if (op->B16) pack_pairs_along_rows16(rows, kp, op->B16, op->ldb, N, K);
        else pack_pairs_along_rows(rows, kp, op->B, op->ldb, N, K);
        transpose_words(b, np, rows, kp, N, kp);  // np: N rounded up to 16, zeros past N
    }
    size_t ai, ap;  // word (i, p) of A at a[i ai + p ap]
    if (!op->ta) {
        pack_pairs_along_rows(a, kp, op->A, op->lda, M, K);
        ai = kp, ap = 1;
    } else {
        pack_pairs_across_rows(a, op->A, op->lda, K, M, mp);
        ai = 1, ap = mp;
    }
    float tile[ROWS * 64];
    for (int j0 = 0; j0 < N; j0 += 64) {
        int nv = imin(4, (N - j0 + 15) / 16);
        for (int i0 = 0; i0 < M; i0 += ROWS) {
            int R = imin(ROWS, M - i0);
            micro_any(tile, a + i0 * ai, ai, ap, b + j0, np, kp, R, nv);
            store_sums(op, tile, 64, i0, j0, R, imin(64, N - j0));
        }
    }
}

// ---- AMX tiles ----

// Palette 1, every tile 16 rows of 64 bytes: the operands are zero-padded to whole tiles.
typedef struct {
    uint8_t palette, start_row, zero[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileConfig;

static int up(int x, int m) { return (x + m - 1) / m * m; }

// A (M, K) as rows of kq pair words (mq rows, zero past M and past the pairs), B (K, N) as kq VNNI
// rows of nq words (zero past N and past the pairs): tiles 4, 5 read 16 rows of A, tiles 6, 7
// 16 columns of B, and tiles 0-3 hold a 32 x 32 block of sums.
AMX_TARGET static void gemm_block_amx(const GemmOp *op) {
    int M = op->M, N = op->N, K = op->K, kp = (K + 1) / 2, kq = up(kp, 16), mq = up(M, 32), nq = up(N, 32);
    size_t awords = (size_t)mq * kq, bwords = (size_t)kq * nq, twords = 0;
    if (op->tb) twords = (size_t)N * kp;
    if (op->ta && (size_t)kp * up(M, 16) > twords) twords = (size_t)kp * up(M, 16);
    uint32_t *a = pack_space(awords + bwords + twords), *b = a + awords, *t = b + bwords;
    if (!op->ta) {
        pack_pairs_along_rows(a, kq, op->A, op->lda, M, K);
        for (int i = 0; i < M; i++) memset(a + (size_t)i * kq + kp, 0, (size_t)(kq - kp) * 4);
    } else {  // VNNI rows of op(A)^T, turned into rows of pairs
        pack_pairs_across_rows(t, op->A, op->lda, K, M, up(M, 16));
        transpose_words(a, kq, t, up(M, 16), kp, M);  // kq = kp rounded up to 16: rows filled
    }
    memset(a + (size_t)M * kq, 0, (size_t)(mq - M) * kq * 4);
    if (!op->tb) {
        if (op->B16) pack_pairs_across_rows16(b, op->B16, op->ldb, K, N, nq);
        else pack_pairs_across_rows(b, op->B, op->ldb, K, N, nq);
    } else {  // rows of pairs of op(B)^T, turned into VNNI rows
        if (op->B16) pack_pairs_along_rows16(t, kp, op->B16, op->ldb, N, K);
        else pack_pairs_along_rows(t, kp, op->B, op->ldb, N, K);
        transpose_words(b, nq, t, kp, N, kp);
        for (int p = 0; p < kp; p++) memset(b + (size_t)p * nq + up(N, 16), 0, (size_t)(nq - up(N, 16)) * 4);
    }
    memset(b + (size_t)kp * nq, 0, (size_t)(kq - kp) * nq * 4);
    // oneDNN runs its own tiles on these threads: keep its configuration and put it back after
    static const TileConfig ours = {.palette = 1,
                                    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                    .rows = {16, 16, 16, 16, 16, 16, 16, 16}};
    TileConfig theirs;
    _tile_storeconfig(&theirs);
    _tile_loadconfig(&ours);
    float sums[32 * 32];
    for (int i0 = 0; i0 < M; i0 += 32)
        for (int j0 = 0; j0 < N; j0 += 32) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int p0 = 0; p0 < kq; p0 += 16) {
                _tile_loadd(4, a + (size_t)i0 * kq + p0, kq * 4);
                _tile_loadd(5, a + (size_t)(i0 + 16) * kq + p0, kq * 4);
                _tile_loadd(6, b + (size_t)p0 * nq + j0, nq * 4);
                _tile_loadd(7, b + (size_t)p0 * nq + j0 + 16, nq * 4);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, sums, 128);
            _tile_stored(1, sums + 16, 128);
            _tile_stored(2, sums + 16 * 32, 128);
            _tile_stored(3, sums + 16 * 32 + 16, 128);
            store_sums(op, sums, 32, i0, j0, imin(32, M - i0), imin(32, N - j0));
        }
    if (theirs.palette) _tile_loadconfig(&theirs);
    else _tile_release();
}
#endif

#if HAVE_BF16_KERNEL
// AMX-BF16: CPUID leaf 7, subleaf 0, EDX bit 22; Linux gives a process AMX's tile state only when
// asked (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA), as oneDNN also asks.
static int amx_usable(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d >> 22 & 1)) return 0;
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}
#endif

typedef enum { BLOCKS_OPENBLAS, BLOCKS_AVX512BF16, BLOCKS_AMX } BlockKernel;
static const char *const KERNEL_NAMES[] = {"openblas", "avx512bf16", "amx"};
static BlockKernel kernel;  // what bf16 blocks run on (set once at the start, by gemm_block_choose)

int gemm_block_choose(const char *name, char *err, size_t cap) {
    if (name && !*name) name = NULL;
    if (name && !strcmp(name, "openblas")) {
        kernel = BLOCKS_OPENBLAS;
        return 0;
    }
#if HAVE_BF16_KERNEL
    if (!name) {
        kernel = amx_usable() ? BLOCKS_AMX : BLOCKS_AVX512BF16;
        return 0;
    }
    if (!strcmp(name, "avx512bf16")) {
        kernel = BLOCKS_AVX512BF16;
        return 0;
    }
    if (!strcmp(name, "amx")) {
        if (!amx_usable()) return set_error(err, cap, "REFORMER_BLOCKS: amx: this CPU (or kernel) gives no AMX tiles");
        kernel = BLOCKS_AMX;
        return 0;
    }
#else
    if (!name) return 0;
#endif
    return set_error(err, cap, "REFORMER_BLOCKS: %s; use openblas%s", name,
                     HAVE_BF16_KERNEL ? ", avx512bf16 or amx" : " (this build has no bf16 block kernel)");
}

static BlockKernel kernel_in(Precision p) { return p == PRECISION_BF16 ? kernel : BLOCKS_OPENBLAS; }

const char *gemm_block_backend(Precision p) { return KERNEL_NAMES[kernel_in(p)]; }

int gemm_block_rounds(void) { return kernel_in(gemm_precision()) != BLOCKS_OPENBLAS; }

void gemm_block_round_row(uint16_t *dst, const float *src, int n) {
#if HAVE_BF16_KERNEL
    if (gemm_block_rounds()) {
        round_row(dst, src, n);
        return;
    }
#endif
    (void)dst, (void)src, (void)n;
    CHECK(0, "gemm_block_round_row: the block products do not round (fp32 precision or sgemm blocks)");
}

void gemm_block(const GemmOp *op) {
#if HAVE_BF16_KERNEL
    switch (kernel_in(gemm_precision())) {
    case BLOCKS_AVX512BF16: gemm_block_bf16(op); return;
    case BLOCKS_AMX: gemm_block_amx(op); return;
    case BLOCKS_OPENBLAS: break;
    }
#endif
    CHECK(!op->A16 && !op->B16, "bf16 operands of an fp32 block product");
    gemm_one(op);
}
