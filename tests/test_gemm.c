// test_gemm.c: the one door for products against a product written out in double, in both
// precisions, every transpose, alpha and beta, and leading dimensions wider than the rows.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/common.h"
#include "../core/gemm.h"
#include "../core/rng.h"
#include "test.h"

// The shapes and flags of one case; A, B and C are stored with 3 spare columns a row.
typedef struct {
    int ta, tb, M, N, K;
    float alpha, beta;
} Case;

static const Case CASES[] = {
    {0, 0, 37, 29, 70, 1.0f, 0.0f}, {0, 1, 64, 48, 33, 1.0f, 1.0f}, {1, 0, 19, 64, 130, 0.5f, 0.0f},
    {1, 1, 40, 21, 8, 1.0f, 1.0f},  {0, 1, 300, 96, 64, 2.0f, 1.0f}, {1, 0, 96, 64, 300, 1.0f, 1.0f},
    // the attention kernel's blocks: QK^T, PV, and the backward's transposed ones; odd K, N > 64
    {0, 1, 64, 64, 64, 1.0f, 0.0f}, {0, 0, 64, 64, 64, 1.0f, 1.0f}, {1, 0, 64, 64, 61, 1.0f, 1.0f},
    {0, 1, 7, 130, 31, 1.0f, 0.0f}, {1, 1, 5, 17, 3, 1.0f, 1.0f},
};

// How a case's operands are stored: A (ar, ac) and B (br, bc) as op(A) (M, K) and op(B) (K, N)
// with the case's transposes, rows of A, B and C with 3 spare columns.
typedef struct {
    int ar, ac, br, bc;
    size_t lda, ldb, ldc;
} Stored;

static Stored stored_of(const Case *c) {
    Stored s = {c->ta ? c->K : c->M, c->ta ? c->M : c->K, c->tb ? c->N : c->K, c->tb ? c->K : c->N, 0, 0, 0};
    s.lda = s.ac + 3;
    s.ldb = s.bc + 3;
    s.ldc = c->N + 3;
    return s;
}

// C (M, N) of the case in double (with bias: + bias_j), and sum_k |a_ik b_kj| + |bias_j| + |beta c_ij|
// (the scale of each element's rounding).
static void reference(const Case *c, const float *A, size_t lda, const float *B, size_t ldb, const float *C0,
                      size_t ldc, const float *bias, double *want, double *scale) {
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->N; j++) {
            double s = 0, a = 0;
            for (int k = 0; k < c->K; k++) {
                double x = c->ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double y = c->tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += x * y;
                a += fabs(x * y);
            }
            double b = bias ? bias[j] : 0.0;
            want[i * c->N + j] = c->alpha * s + b + c->beta * C0[(size_t)i * ldc + j];
            scale[i * c->N + j] = fabs(c->alpha) * a + fabs(b) + fabs(c->beta * C0[(size_t)i * ldc + j]);
        }
}

enum { ONE, BLOCK, TEAM };  // gemm_one, gemm_block, gemm_team

// Runs every case through door (ONE, BLOCK or TEAM) in the process's precision; returns the worst
// error of an element over its scale. exact: the inputs are small integers times powers of two,
// which bf16 holds exactly.
static double worst_error(int exact, int door) {
    double worst = 0;
    for (size_t n = 0; n < sizeof(CASES) / sizeof(CASES[0]); n++) {
        const Case *c = &CASES[n];
        Stored st = stored_of(c);
        int ar = st.ar, br = st.br;
        size_t lda = st.lda, ldb = st.ldb, ldc = st.ldc;
        float *A = xmalloc((size_t)ar * lda * 4), *B = xmalloc((size_t)br * ldb * 4);
        float *C = xmalloc((size_t)c->M * ldc * 4), *C0 = xmalloc((size_t)c->M * ldc * 4);
        fill_normal(A, (size_t)ar * lda, 1.0f, 10 + n);
        fill_normal(B, (size_t)br * ldb, 1.0f, 20 + n);
        fill_normal(C0, (size_t)c->M * ldc, 1.0f, 30 + n);
        if (exact) {  // 8 significant bits at most: bf16 holds them, and fp32 sums them exactly
            for (size_t i = 0; i < (size_t)ar * lda; i++) A[i] = roundf(A[i] * 8) / 8;
            for (size_t i = 0; i < (size_t)br * ldb; i++) B[i] = roundf(B[i] * 8) / 8;
            for (size_t i = 0; i < (size_t)c->M * ldc; i++) C0[i] = roundf(C0[i] * 8) / 8;
        }
        memcpy(C, C0, (size_t)c->M * ldc * 4);
        float *bias = NULL;  // gemm_team's bias on every other case
        if (door == TEAM && n % 2) {
            bias = xmalloc((size_t)c->N * 4);
            fill_normal(bias, c->N, 1.0f, 40 + n);
            if (exact)
                for (int j = 0; j < c->N; j++) bias[j] = roundf(bias[j] * 8) / 8;
        }
        double *want = xmalloc((size_t)c->M * c->N * sizeof(double)), *scale = xmalloc((size_t)c->M * c->N * sizeof(double));
        reference(c, A, lda, B, ldb, C0, ldc, bias, want, scale);
        GemmOp op = {c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, lda, B, ldb, c->beta, C, ldc, bias};
        if (door == TEAM) gemm_team(&op, 1);
        else if (door == BLOCK) gemm_block(&op);
        else gemm_one(&op);
        for (int i = 0; i < c->M; i++) {
            for (int j = 0; j < c->N; j++) {
                double e = fabs(C[(size_t)i * ldc + j] - want[i * c->N + j]) / fmax(scale[i * c->N + j], 1e-30);
                if (e > worst) worst = e;
            }
            // the 3 spare columns of each row of C are not written
            for (int j = c->N; j < (int)ldc; j++)
                EXPECT(C[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j], "case %zu: C[%d][%d] written", n, i, j);
        }
        float *bufs[] = {A, B, C, C0, bias};
        for (int i = 0; i < 5; i++) xfree(bufs[i]);
        xfree(want);
        xfree(scale);
    }
    return worst;
}

// gemm_block with B16 (B's rows rounded by gemm_block_round_row, subnormals among them) against
// the same product from fp32 B: the same bits in every case. Returns the cases that differ.
static int block_b16_differs(void) {
    int bad = 0;
    for (size_t n = 0; n < sizeof(CASES) / sizeof(CASES[0]); n++) {
        const Case *c = &CASES[n];
        Stored st = stored_of(c);
        int ar = st.ar, br = st.br, bc = st.bc;
        size_t lda = st.lda, ldb = st.ldb, ldc = st.ldc;
        float *A = xmalloc((size_t)ar * lda * 4), *B = xmalloc((size_t)br * ldb * 4);
        float *C[2] = {xmalloc((size_t)c->M * ldc * 4), xmalloc((size_t)c->M * ldc * 4)};
        uint16_t *B16 = xmalloc((size_t)br * ldb * sizeof(uint16_t));
        fill_normal(A, (size_t)ar * lda, 1.0f, 50 + n);
        fill_normal(B, (size_t)br * ldb, 1.0f, 60 + n);
        B[0] = 1e-40f, B[1] = -3e-39f;  // subnormal: the kernels' rounding flushes them
        fill_normal(C[0], (size_t)c->M * ldc, 1.0f, 70 + n);
        memcpy(C[1], C[0], (size_t)c->M * ldc * 4);
        for (int r = 0; r < br; r++) gemm_block_round_row(B16 + (size_t)r * ldb, B + (size_t)r * ldb, bc);
        gemm_block(&(GemmOp){c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, lda, B, ldb, c->beta, C[0], ldc});
        gemm_block(&(GemmOp){c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, lda, NULL, ldb, c->beta, C[1], ldc, .B16 = B16});
        bad += memcmp(C[0], C[1], (size_t)c->M * ldc * 4) != 0;
        float *bufs[] = {A, B, C[0], C[1]};
        for (int i = 0; i < 4; i++) xfree(bufs[i]);
        xfree(B16);
    }
    return bad;
}

// fp32: OpenBLAS on the calling thread and tiled over the team, within float rounding.
void test_gemm_fp32_matches_double(void) {
    char err[256];
    EXPECT(gemm_set_precision(PRECISION_FP32, err, sizeof(err)) == 0, "%s", err);
    double one = worst_error(0, ONE), block = worst_error(0, BLOCK), team = worst_error(0, TEAM);
    printf("    fp32 worst error over scale: %.2e on one thread, %.2e blocks, %.2e tiled\n", one, block, team);
    EXPECT(one < 1e-6 && block < 1e-6 && team < 1e-6, "fp32 products off by %.2e / %.2e / %.2e of their scale", one,
           block, team);
    EXPECT(worst_error(1, TEAM) == 0.0 && worst_error(1, BLOCK) == 0.0, "fp32 products of exact inputs are not exact");
}

// bf16: exact where bf16 holds the inputs (transposes, strides, alpha and beta all right), and
// within bf16's rounding of both operands (about 2^-8 of each element's scale) on any inputs. A build
// without oneDNN, or a CPU without bf16 instructions, must refuse the precision in one line.
void test_gemm_bf16_within_rounding(void) {
    char err[256] = "";
    int ok = gemm_set_precision(PRECISION_BF16, err, sizeof(err)) == 0;
#ifndef REFORMER_DNNL
    EXPECT(!ok && strstr(err, "no oneDNN") && gemm_precision() == PRECISION_FP32, "bf16 without oneDNN: %s", err);
    return;
#endif
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) {
        EXPECT(!ok && strstr(err, "no bf16 instructions"), "bf16 on a CPU without it: %s", err);
        return;
    }
    EXPECT(ok, "%s", err);
    double exact = worst_error(1, TEAM), any = worst_error(0, TEAM), one = worst_error(0, ONE);
    double bexact = worst_error(1, BLOCK), bany = worst_error(0, BLOCK);
    printf("    bf16 worst error over scale: %.2e exact inputs, %.2e any; blocks %.2e, %.2e (fp32 gemm_one: %.2e)\n",
           exact, any, bexact, bany, one);
    EXPECT(exact == 0.0 && bexact == 0.0, "bf16 products of bf16-exact inputs are off by %.2e / %.2e (blocks)", exact,
           bexact);
    // each operand rounds by at most u = 2^-8 of itself (bf16 keeps 8 significant bits), so a
    // product by 2u + u^2; the fp32 sums of K <= 300 terms add at most K 2^-24 more
    double bound = 2 * 0x1p-8 + 0x1p-16 + 300 * 0x1p-24;
    EXPECT(any < bound && any > 1e-5, "bf16 products off by %.2e of their scale (rounding allows %.2e)", any, bound);
    if (!strcmp(gemm_block_backend(PRECISION_BF16), "openblas"))  // REFORMER_BLOCKS=openblas: sgemm blocks
        EXPECT(bany < 1e-6, "blocks on sgemm off by %.2e", bany);
    else
        EXPECT(bany < bound && bany > 1e-5, "bf16 blocks off by %.2e of their scale (rounding allows %.2e)", bany, bound);
    // every block kernel this CPU runs, whichever is the default; AMX refused in one line where it is not
    const char *kernels[] = {"avx512bf16", "amx"};
    for (int k = 0; k < 2; k++) {
        if (gemm_block_choose(kernels[k], err, sizeof(err))) {
            EXPECT(k == 1 && strstr(err, "no AMX") && !__builtin_cpu_supports("amx-bf16"), "%s: %s", kernels[k], err);
            continue;
        }
        double kexact = worst_error(1, BLOCK), kany = worst_error(0, BLOCK);
        printf("    blocks on %s: %.2e exact inputs, %.2e any\n", kernels[k], kexact, kany);
        EXPECT(kexact == 0.0 && kany < bound && kany > 1e-5, "blocks on %s off by %.2e / %.2e", kernels[k], kexact, kany);
        int b16 = block_b16_differs();
        EXPECT(b16 == 0, "blocks on %s: B held in bf16 changed the bits of %d cases", kernels[k], b16);
    }
    EXPECT(gemm_block_choose(getenv("REFORMER_BLOCKS"), err, sizeof(err)) == 0, "%s", err);
    EXPECT(one < 1e-6, "gemm_one is fp32 in either precision: %.2e", one);
    // the same product twice, on the team and on one thread: the same bits each time
    enum { M = 300, N = 96, K = 64 };
    float *A = xmalloc(M * K * 4), *B = xmalloc(N * K * 4), *C[2] = {xmalloc(M * N * 4), xmalloc(M * N * 4)};
    fill_normal(A, M * K, 1.0f, 1);
    fill_normal(B, N * K, 1.0f, 2);
    for (int split = 0; split < 2; split++) {
        for (int k = 0; k < 2; k++) gemm_team(&(GemmOp){0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C[k], N}, split);
        EXPECT(!memcmp(C[0], C[1], M * N * 4), "bf16 products differ between two runs (split %d)", split);
    }
    for (int k = 0; k < 2; k++) gemm_block(&(GemmOp){0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C[k], N});
    EXPECT(!memcmp(C[0], C[1], M * N * 4), "bf16 blocks differ between two runs");
    xfree(A);
    xfree(B);
    xfree(C[0]);
    xfree(C[1]);
    gemm_set_precision(PRECISION_FP32, err, sizeof(err));
}
