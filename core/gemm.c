// gemm.c: OpenBLAS sgemm tiled over our threads (fp32), and oneDNN's matmul on bfloat16
// operands (bf16, in a build with REFORMER_DNNL).
#include "gemm.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#ifdef REFORMER_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

const char *const precision_names[] = {"fp32", "bf16", NULL};

static Precision precision = PRECISION_FP32;

Precision gemm_precision(void) { return precision; }

const char *gemm_backend(Precision p) { return p == PRECISION_BF16 ? "onednn" : "openblas"; }

int gemm_set_precision(Precision p, char *err, size_t cap) {
    if (p == PRECISION_BF16) {
#ifndef REFORMER_DNNL
        return set_error(err, cap, "precision bf16: this build has no oneDNN (install libdnnl-dev and rebuild)");
#else
        // oneDNN would emulate bf16 on a CPU without it, slower than fp32: refuse instead
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx512bf16"))
            return set_error(err, cap, "precision bf16: this CPU has no bf16 instructions (avx512_bf16 or AMX)");
#endif
    }
    if (gemm_block_choose(getenv("REFORMER_BLOCKS"), err, cap)) return -1;
    precision = p;
    return 0;
}

void gemm_one(const GemmOp *op) {
    cblas_sgemm(CblasRowMajor, op->ta ? CblasTrans : CblasNoTrans, op->tb ? CblasTrans : CblasNoTrans, op->M, op->N,
                op->K, op->alpha, op->A, (int)op->lda, op->B, (int)op->ldb, op->beta, op->C, (int)op->ldc);
}

// ---- fp32: tiles of single-threaded sgemm ----

// The part of an (M, N) product that thread t of nt computes: rows [r0, r1), columns [c0, c1).
typedef struct {
    int r0, r1, c0, c1;
} Tile;

// nt threads tile an (M, N) output as rs row groups x cs column groups (rs cs = nt). Each
// thread's single-threaded sgemm packs its rows of A and its columns of B, K values each,
// so the team packs K (cs M + rs N) floats: rows alone (cs = 1) made each of 16 threads pack
// a whole 1024 x 256 weight for 64 rows, and columns alone a whole input. The cs that packs
// least wins (fewer column groups on a tie: plain row bands).
static Tile tile_of(int M, int N, int nt, int t) {
    int cs = 1;
    double least = 0;
    for (int c = 1; c <= nt; c++) {
        if (nt % c || c > N) continue;
        double packed = (double)c * M + (double)(nt / c) * N;
        if (c == 1 || packed < least) least = packed, cs = c;
    }
    int rs = nt / cs, ri = t / cs, ci = t % cs;
    Tile k = {(int)((long)M * ri / rs), (int)((long)M * (ri + 1) / rs), (int)((long)N * ci / cs),
              (int)((long)N * (ci + 1) / cs)};
    return k;
}

static void gemm_tiled(const GemmOp *op, int split) {
    #pragma omp parallel if (split)
    {
        Tile k = tile_of(op->M, op->N, omp_get_num_threads(), omp_get_thread_num());
        if (k.r1 > k.r0 && k.c1 > k.c0) {
            GemmOp t = *op;
            t.M = k.r1 - k.r0;
            t.N = k.c1 - k.c0;
            t.A = op->ta ? op->A + k.r0 : op->A + (size_t)k.r0 * op->lda;
            t.B = op->tb ? op->B + (size_t)k.c0 * op->ldb : op->B + k.c0;
            t.C = op->C + (size_t)k.r0 * op->ldc + k.c0;
            gemm_one(&t);
        }
    }
}

// C (M rows of N, ldc apart) = beta C + bias, to which an fp32 product then adds itself (beta 1):
// the order fp32's biased products have always summed in. beta 0 does not read C (0 * a stale
// Inf is NaN).
static void bias_first(float *C, size_t ldc, int M, int N, const float *bias, float beta, int split) {
    #pragma omp parallel for schedule(static) if (split)
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = (beta == 0.0f ? 0.0f : beta * c[j]) + bias[j];
    }
}

void gemv_team(int M, int N, float alpha, const float *A, size_t lda, const float *x, const float *bias, float beta,
               float *y, int split) {
    if (bias) {  // y as one row of M
        bias_first(y, M, 1, M, bias, beta, 0);
        beta = 1.0f;
    }
    #pragma omp parallel if (split)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int m0 = (int)((size_t)M * t / nt), m1 = (int)((size_t)M * (t + 1) / nt);
        if (m1 > m0)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, m1 - m0, N, alpha, A + (size_t)m0 * lda, (int)lda, x, 1, beta,
                        y + m0, 1);
    }
}

// ---- bf16 ----

void gemm_round_bf16(uint16_t *dst, const float *src, size_t rows, int cols, size_t ld, int split) {
    #pragma omp parallel for schedule(static) if (split && rows * cols > PARALLEL_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * ld;
        uint16_t *d = dst + (size_t)r * cols;
        #pragma omp simd
        for (int c = 0; c < cols; c++) d[c] = bf16_round(s[c]);
    }
}

// oneDNN matmul
#ifdef REFORMER_DNNL

#define CK(call)                                                              \
    do {                                                                      \
        dnnl_status_t s_ = (call);                                            \
        CHECK(s_ == dnnl_success, "%s failed (oneDNN status %d)", #call, s_); \
    } while (0)

// A matmul primitive for one product's shape, made once and kept (per thread: primitives with
// the library's scratchpad are not to be run by two threads at once).
typedef struct {
    int ta, tb, M, N, K, bias;
    size_t lda, ldb, ldc;  // of the bf16 operands (a dense copy's, or A16's and B16's)
    float alpha, beta;
    dnnl_primitive_t p;
    dnnl_memory_desc_t a, b, c, bias_md;
} Matmul;

#define MAX_MATMULS 64
typedef struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    Matmul mm[MAX_MATMULS];
    int n;
    uint16_t *ab;  // the bf16 operands of the last call
    size_t ab_len;
} DnnlThread;

static __thread DnnlThread dt;

// op's operands are bf16 with rows lda and ldb apart (A stored (M, K), or (K, M) with ta; B likewise).
static Matmul *matmul_for(const GemmOp *op, size_t lda, size_t ldb) {
    for (int i = 0; i < dt.n; i++) {
        Matmul *m = &dt.mm[i];
        if (m->ta == op->ta && m->tb == op->tb && m->M == op->M && m->N == op->N && m->K == op->K &&
            m->bias == (op->bias != NULL) && m->lda == lda && m->ldb == ldb && m->ldc == op->ldc &&
            m->alpha == op->alpha && m->beta == op->beta)
            return m;
    }
    if (!dt.engine) {
        CK(dnnl_engine_create(&dt.engine, dnnl_cpu, 0));
        CK(dnnl_stream_create(&dt.stream, dt.engine, dnnl_stream_default_flags));
    }
    Matmul *m = &dt.mm[dt.n < MAX_MATMULS ? dt.n++ : MAX_MATMULS - 1];
    if (m->p) dnnl_primitive_destroy(m->p);  // the cache is full: the last slot is reused
    memset(m, 0, sizeof(*m));
    *m = (Matmul){.ta = op->ta, .tb = op->tb, .M = op->M, .N = op->N, .K = op->K, .bias = op->bias != NULL,
                  .lda = lda, .ldb = ldb, .ldc = op->ldc, .alpha = op->alpha, .beta = op->beta};
    dnnl_dims_t da = {op->M, op->K}, db = {op->K, op->N}, dc = {op->M, op->N};
    dnnl_dims_t sa = {op->ta ? 1 : (dnnl_dim_t)lda, op->ta ? (dnnl_dim_t)lda : 1};
    dnnl_dims_t sb = {op->tb ? 1 : (dnnl_dim_t)ldb, op->tb ? (dnnl_dim_t)ldb : 1};
    dnnl_dims_t sc = {(dnnl_dim_t)op->ldc, 1};
    CK(dnnl_memory_desc_init_by_strides(&m->a, 2, da, dnnl_bf16, sa));
    CK(dnnl_memory_desc_init_by_strides(&m->b, 2, db, dnnl_bf16, sb));
    CK(dnnl_memory_desc_init_by_strides(&m->c, 2, dc, dnnl_f32, sc));
    dnnl_dims_t dbias = {1, op->N}, sbias = {op->N, 1};
    if (m->bias) CK(dnnl_memory_desc_init_by_strides(&m->bias_md, 2, dbias, dnnl_f32, sbias));
    dnnl_matmul_desc_t md;
    CK(dnnl_matmul_desc_init(&md, &m->a, &m->b, m->bias ? &m->bias_md : NULL, &m->c));
    dnnl_primitive_attr_t attr;
    CK(dnnl_primitive_attr_create(&attr));
    if (op->alpha != 1.0f) CK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &op->alpha));
    dnnl_post_ops_t post = NULL;
    if (op->beta != 0.0f) {  // C = alpha A B + beta C
        CK(dnnl_post_ops_create(&post));
        CK(dnnl_post_ops_append_sum(post, op->beta));
        CK(dnnl_primitive_attr_set_post_ops(attr, post));
    }
    dnnl_primitive_desc_t pd;
    CK(dnnl_primitive_desc_create(&pd, &md, attr, dt.engine, NULL));
    CK(dnnl_primitive_create(&m->p, pd));
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    if (post) dnnl_post_ops_destroy(post);
    return m;
}

static void gemm_bf16(const GemmOp *op, int split) {
    int ar = op->ta ? op->K : op->M, ac = op->ta ? op->M : op->K;  // A as stored
    int br = op->tb ? op->N : op->K, bc = op->tb ? op->K : op->N;
    size_t need = (op->A16 ? 0 : (size_t)ar * ac) + (op->B16 ? 0 : (size_t)br * bc);
    if (need > dt.ab_len) {
        xfree(dt.ab);
        dt.ab = xmalloc(need * sizeof(uint16_t));
        dt.ab_len = need;
    }
    // the operands rounded here (dense copies) or by the caller (A16, B16 as they lie)
    const uint16_t *a = op->A16, *b = op->B16;
    size_t lda = op->A16 ? op->lda : (size_t)ac, ldb = op->B16 ? op->ldb : (size_t)bc;
    if (!a) {
        gemm_round_bf16(dt.ab, op->A, ar, ac, op->lda, split);
        a = dt.ab;
    }
    if (!b) {
        uint16_t *copy = dt.ab + (op->A16 ? 0 : (size_t)ar * ac);
        gemm_round_bf16(copy, op->B, br, bc, op->ldb, split);
        b = copy;
    }
    Matmul *m = matmul_for(op, lda, ldb);
    dnnl_memory_t ma, mb, mc, mbias = NULL;
    CK(dnnl_memory_create(&ma, &m->a, dt.engine, (void *)a));
    CK(dnnl_memory_create(&mb, &m->b, dt.engine, (void *)b));
    CK(dnnl_memory_create(&mc, &m->c, dt.engine, op->C));
    if (m->bias) CK(dnnl_memory_create(&mbias, &m->bias_md, dt.engine, (void *)op->bias));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_BIAS, mbias}};
    // oneDNN's OpenMP runtime: all our threads outside a parallel region, this one inside
    CK(dnnl_primitive_execute(m->p, dt.stream, m->bias ? 4 : 3, args));
    CK(dnnl_stream_wait(dt.stream));
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mc);
    if (mbias) dnnl_memory_destroy(mbias);
}
#endif

void gemm_team(const GemmOp *op, int split) {
#ifdef REFORMER_DNNL
    if (precision == PRECISION_BF16) {
        gemm_bf16(op, split);
        return;
    }
#endif
    CHECK(!op->A16 && !op->B16, "bf16 operands of an fp32 product");
    if (!op->bias) {
        gemm_tiled(op, split);
        return;
    }
    bias_first(op->C, op->ldc, op->M, op->N, op->bias, op->beta, split);
    GemmOp t = *op;
    t.beta = 1.0f;
    t.bias = NULL;
    gemm_tiled(&t, split);
}
