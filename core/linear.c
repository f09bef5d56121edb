// linear.c: sgemm split across our own OpenMP threads. BLAS itself runs on one
// thread (threads_set), so there is one thread pool and no oversubscription;
// each split is fixed by the shape and the thread count, so results are reproducible.
#include "linear.h"

#include <cblas.h>

#include "common.h"
#include "profile.h"

// Below this many rows per thread the split costs more than it gains.
#define MIN_ROWS_PER_THREAD 32

static int use_threads(size_t rows) {
    return !omp_in_parallel() && threads_get() > 1 && rows >= (size_t)MIN_ROWS_PER_THREAD * 2;
}

// The part of an (M, N) product that thread t of nt computes: rows [r0, r1), columns [c0, c1).
typedef struct {
    size_t r0, r1;
    int c0, c1;
} Tile;

// nt threads tile an (M, N) output as rs row groups x cs column groups (rs cs = nt). Each
// thread's single-threaded sgemm packs its rows of A and its columns of B, K values each,
// so the team packs K (cs M + rs N) floats: rows alone (cs = 1) made each of 16 threads pack
// a whole 1024 x 256 weight for 64 rows, and columns alone a whole input. The cs that packs
// least wins (fewer column groups on a tie: plain row bands).
static Tile tile_of(size_t M, int N, int nt, int t) {
    int cs = 1;
    double least = 0;
    for (int c = 1; c <= nt; c++) {
        if (nt % c || c > N) continue;
        double packed = (double)c * M + (double)(nt / c) * N;
        if (c == 1 || packed < least) least = packed, cs = c;
    }
    int rs = nt / cs, ri = t / cs, ci = t % cs;
    Tile k = {M * ri / rs, M * (ri + 1) / rs, (int)((long)N * ci / cs), (int)((long)N * (ci + 1) / cs)};
    return k;
}

// The dense layers' sgemm time and FLOPs for `reformer bench` (one thread's, see profile_counting).
static void account(double since, double flops) {
    if (!profile_counting()) return;
    profile_gemm_seconds += now_seconds() - since;
    profile_gemm_flops += flops;
}

void linear_forward_ld(float *out, const float *inp, const float *weight, size_t ldw, size_t N,
                       int IC, int OC, float alpha, float beta) {
    double t0 = now_seconds();
    if (N == 1) {  // one position (cached decoding): sgemv, which does not pack the weight
        #pragma omp parallel if (!omp_in_parallel() && threads_get() > 1 && OC >= 256)
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            int o0 = (int)((size_t)OC * t / nt), o1 = (int)((size_t)OC * (t + 1) / nt);
            if (o1 > o0)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, o1 - o0, IC, alpha, weight + (size_t)o0 * ldw, (int)ldw, inp,
                            1, beta, out + o0, 1);
        }
    } else {
        #pragma omp parallel if (use_threads(N))
        {
            // out[r0:r1, c0:c1] = inp[r0:r1] @ W[c0:c1]^T
            Tile k = tile_of(N, OC, omp_get_num_threads(), omp_get_thread_num());
            if (k.r1 > k.r0 && k.c1 > k.c0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(k.r1 - k.r0), k.c1 - k.c0, IC, alpha,
                            inp + k.r0 * IC, IC, weight + (size_t)k.c0 * ldw, (int)ldw, beta,
                            out + k.r0 * OC + k.c0, OC);
        }
    }
    account(t0, 2.0 * N * IC * OC);
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    size_t N, int IC, int OC, float beta) {
    if (bias) {
        #pragma omp parallel for schedule(static) if (use_threads(N))
        for (size_t n = 0; n < N; n++)
            for (int c = 0; c < OC; c++)  // beta 0 must not read out: 0 * a stale Inf is NaN
                out[n * OC + c] = (beta == 0.0f ? 0.0f : beta * out[n * OC + c]) + bias[c];
        beta = 1.0f;
    }
    linear_forward_ld(out, inp, weight, IC, N, IC, OC, 1.0f, beta);
}

// dinp = dinp_beta * dinp + dout @ W (beta 0: no zeroing pass first); dW += dout^T @ inp.
static void backward(float *dinp, float dinp_beta, float *dweight, size_t ldw, const float *dout,
                     const float *inp, const float *weight, size_t N, int IC, int OC) {
    double t0 = now_seconds();
    #pragma omp parallel if (use_threads(N))
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        if (dinp) {  // dinp[r0:r1, c0:c1] += dout[r0:r1] @ W[:, c0:c1]
            Tile k = tile_of(N, IC, nt, t);
            if (k.r1 > k.r0 && k.c1 > k.c0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(k.r1 - k.r0), k.c1 - k.c0, OC, 1.0f,
                            dout + k.r0 * OC, OC, weight + k.c0, (int)ldw, dinp_beta, dinp + k.r0 * IC + k.c0, IC);
        }
        // dW[o0:o1, i0:i1] += dout[:, o0:o1]^T @ inp[:, i0:i1]: each sum over N stays whole in
        // one thread, so no partial sums to combine
        Tile k = tile_of((size_t)OC, IC, nt, t);
        if (dweight && k.r1 > k.r0 && k.c1 > k.c0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(k.r1 - k.r0), k.c1 - k.c0, (int)N, 1.0f,
                        dout + k.r0, OC, inp + k.c0, IC, 1.0f, dweight + k.r0 * ldw + k.c0, (int)ldw);
    }
    account(t0, 2.0 * N * IC * OC * ((dinp != NULL) + (dweight != NULL)));
}

void linear_backward_ld(float *dinp, float *dweight, size_t ldw, const float *dout,
                        const float *inp, const float *weight, size_t N, int IC, int OC) {
    backward(dinp, 1.0f, dweight, ldw, dout, inp, weight, N, IC, OC);
}

void linear_input_grad(float *dinp, const float *dout, const float *weight, size_t ldw, size_t N, int IC,
                       int OC) {
    backward(dinp, 0.0f, NULL, ldw, dout, NULL, weight, N, IC, OC);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, size_t N, int IC, int OC) {
    linear_backward_ld(dinp, dweight, IC, dout, inp, weight, N, IC, OC);
    if (dbias) {
        #pragma omp parallel if (use_threads(N))
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            int o0 = (int)((long)OC * t / nt), o1 = (int)((long)OC * (t + 1) / nt);
            for (size_t n = 0; n < N; n++)
                for (int o = o0; o < o1; o++) dbias[o] += dout[n * OC + o];
        }
    }
}
