// gemm_block.c: small products (the attention kernel's blocks of up to 64 rows) on the calling
// thread. fp32 is OpenBLAS's sgemm; bf16 is our own AVX512-BF16 kernel, because a oneDNN call
// costs more than a 64 x 64 x 64 block and a batch of blocks would need the whole window
// gathered first.
//
// The bf16 kernel rounds both operands to bfloat16 (nearest even, as vcvtneps2bf16 does: it also
// flushes subnormal inputs to zero) while packing them, then vdpbf16ps adds pairs of their
// products into fp32 sums:
//   A as pairs (a[i][2p], a[i][2p+1]), one 32-bit word each, broadcast across the lanes;
//   B as VNNI rows: word (p, j) = (b[2p][j], b[2p+1][j]), 16 columns a vector.
// The sum of each element runs over p in order, so the bits are fixed by the shape.
//
// Which CPUs it runs on is measured, not assumed: on AMD Zen 5 (AVX512-BF16, no AMX) it halves
// the attention kernel's time and runs the B6 step 1.1-1.2x faster than sgemm blocks; on Intel
// Sapphire Rapids (AMX) vdpbf16ps is no faster than fp32 FMAs (oneDNN held to AVX512-BF16 there
// ran the 2048^3 reference at 143-161 GFLOP/s against sgemm's 168), and the B6 step ran 3-8%
// slower with the kernel than with sgemm blocks. So CPUs with AMX keep sgemm blocks (BENCH.md, "bf16
// attention blocks").
#include "gemm.h"

#include <cblas.h>
#include <cpuid.h>
#include <stdint.h>
#include <string.h>

#include "common.h"

#if defined(__x86_64__) && defined(REFORMER_DNNL)  // bf16 runs only in a build with oneDNN
#define HAVE_BF16_KERNEL 1
#else
#define HAVE_BF16_KERNEL 0
#endif

#if HAVE_BF16_KERNEL
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
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

// Rows of K contiguous values become rows of (K + 1) / 2 pair words: dst[r][p] = (x[r][2p], x[r][2p+1]).
TARGET static void pack_pairs_along_rows(uint32_t *dst, const float *x, size_t ld, int rows, int K) {
    int kp = (K + 1) / 2;
    for (int r = 0; r < rows; r++) {
        uint16_t *d = (uint16_t *)(dst + (size_t)r * kp);
        const float *s = x + (size_t)r * ld;
        int k = 0;
        for (; k + 16 <= K; k += 16) _mm256_storeu_si256((__m256i *)(d + k), bf16_row16(s + k, 16));
        if (k < K) {
            int n = K - k, words = (n + 1) / 2;  // an odd K's last word takes a zero
            __m256i v = bf16_row16(s + k, n);
            _mm256_mask_storeu_epi16(d + k, (__mmask16)((1u << (2 * words)) - 1), v);
        }
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
        pack_pairs_across_rows(b, op->B, op->ldb, K, N, np);
    } else {
        uint32_t *rows = a + awords;  // (N, kp)
        pack_pairs_along_rows(rows, op->B, op->ldb, N, K);
        for (int p = 0; p < kp; p++) {
            uint32_t *d = b + (size_t)p * np;
            for (int j = 0; j < N; j++) d[j] = rows[(size_t)j * kp + p];
            for (int j = N; j < np; j++) d[j] = 0;
        }
    }
    size_t ai, ap;  // word (i, p) of A at a[i ai + p ap]
    if (!op->ta) {
        pack_pairs_along_rows(a, op->A, op->lda, M, K);
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
            int n = imin(64, N - j0);
            for (int r = 0; r < R; r++) {
                float *c = op->C + (size_t)(i0 + r) * op->ldc + j0;
                const float *t = tile + r * 64;
                if (op->beta == 0.0f)
                    for (int j = 0; j < n; j++) c[j] = op->alpha * t[j];
                else
                    for (int j = 0; j < n; j++) c[j] = op->alpha * t[j] + op->beta * c[j];
            }
        }
    }
}
#endif

#if HAVE_BF16_KERNEL
// AMX-BF16: CPUID leaf 7, subleaf 0, EDX bit 22.
static int cpu_has_amx(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1);
}
#endif

static int use_kernel;  // bf16 blocks on our kernel (set once at the start, by gemm_block_choose)

int gemm_block_choose(const char *name, char *err, size_t cap) {
    if (name && !*name) name = NULL;
    if (name && !strcmp(name, "openblas")) {
        use_kernel = 0;
        return 0;
    }
#if HAVE_BF16_KERNEL
    if (!name) {
        use_kernel = !cpu_has_amx();
        return 0;
    }
    if (!strcmp(name, "avx512bf16")) {
        use_kernel = 1;
        return 0;
    }
#else
    if (!name) return 0;
#endif
    return set_error(err, cap, "REFORMER_BLOCKS: %s; use openblas%s", name,
                     HAVE_BF16_KERNEL ? " or avx512bf16" : " (this build has no bf16 block kernel)");
}

static int bf16_kernel(Precision p) { return p == PRECISION_BF16 && use_kernel; }

const char *gemm_block_backend(Precision p) { return bf16_kernel(p) ? "avx512bf16" : "openblas"; }

void gemm_block(const GemmOp *op) {
#if HAVE_BF16_KERNEL
    if (bf16_kernel(gemm_precision())) {
        gemm_block_bf16(op);
        return;
    }
#endif
    gemm_one(op);
}
