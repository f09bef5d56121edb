// linear.c: dense layers on gemm.h's products, split across our own OpenMP threads (in fp32
// BLAS itself runs on one thread: one thread pool and no oversubscription; each split is
// fixed by the shape and the thread count, so results are reproducible).
#include "linear.h"

#include "common.h"
#include "gemm.h"
#include "profile.h"

// Below this many rows per thread the split costs more than it gains.
#define MIN_ROWS_PER_THREAD 32

static int use_threads(size_t rows) {
    return !omp_in_parallel() && threads_get() > 1 && rows >= (size_t)MIN_ROWS_PER_THREAD * 2;
}

// The dense layers' sgemm time and FLOPs for `reformer bench` (one thread's, see profile_counting).
static void account(double since, double flops) {
    if (!profile_counting()) return;
    profile_gemm_seconds += now_seconds() - since;
    profile_gemm_flops += flops;
}

// out = alpha inp W^T + bias + beta out (bias NULL: none); in bf16 the bias is added in the
// product's epilogue (gemm_team). inp16: the input already rounded to bf16 (then inp is NULL).
static void forward(float *out, const float *inp, const uint16_t *inp16, const float *weight, size_t ldw,
                    const float *bias, size_t N, int IC, int OC, float alpha, float beta) {
    double t0 = now_seconds();
    if (N == 1 && !inp16) {  // one position (cached decoding): gemv, which does not pack the weight
        gemv_team(OC, IC, alpha, weight, ldw, inp, bias, beta, out,
                  !omp_in_parallel() && threads_get() > 1 && OC >= 256);
    } else {  // out = inp @ W^T
        GemmOp op = {0, 1, (int)N, OC, IC, alpha, inp, (size_t)IC, weight, ldw, beta, out, (size_t)OC, bias, inp16};
        gemm_team(&op, use_threads(N));
    }
    account(t0, 2.0 * N * IC * OC);
}

void linear_forward_ld(float *out, const float *inp, const float *weight, size_t ldw, size_t N,
                       int IC, int OC, float alpha, float beta) {
    forward(out, inp, NULL, weight, ldw, NULL, N, IC, OC, alpha, beta);
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    size_t N, int IC, int OC, float beta) {
    forward(out, inp, NULL, weight, IC, bias, N, IC, OC, 1.0f, beta);
}

void linear_forward_bf16(float *out, const uint16_t *inp, const float *weight, const float *bias, size_t N, int IC,
                         int OC) {
    forward(out, NULL, inp, weight, IC, bias, N, IC, OC, 1.0f, 0.0f);
}

// dinp = dinp_beta * dinp + dout @ W (beta 0: no zeroing pass first); dW += dout^T @ inp (or
// inp16, the input already rounded to bf16).
static void backward(float *dinp, float dinp_beta, float *dweight, size_t ldw, const float *dout,
                     const float *inp, const uint16_t *inp16, const float *weight, size_t N, int IC, int OC) {
    double t0 = now_seconds();
    if (dinp) {  // dinp (N, IC) += dout (N, OC) @ W (OC, IC)
        GemmOp op = {0, 0, (int)N, IC, OC, 1.0f, dout, (size_t)OC, weight, ldw, dinp_beta, dinp, (size_t)IC};
        gemm_team(&op, use_threads(N));
    }
    if (dweight) {  // dW (OC, IC) += dout^T (OC, N) @ inp (N, IC): each sum over N stays whole in a tile
        GemmOp op = {1, 0, OC, IC, (int)N, 1.0f, dout, (size_t)OC, inp, (size_t)IC, 1.0f, dweight, ldw, NULL, NULL, inp16};
        gemm_team(&op, use_threads(N));
    }
    account(t0, 2.0 * N * IC * OC * ((dinp != NULL) + (dweight != NULL)));
}

void linear_backward_ld(float *dinp, float *dweight, size_t ldw, const float *dout,
                        const float *inp, const float *weight, size_t N, int IC, int OC) {
    backward(dinp, 1.0f, dweight, ldw, dout, inp, NULL, weight, N, IC, OC);
}

// dbias += sum_n dout (N, OC), each thread a range of outputs summed in n order.
static void bias_grad(float *dbias, const float *dout, size_t N, int OC) {
    #pragma omp parallel if (use_threads(N))
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int o0 = (int)((long)OC * t / nt), o1 = (int)((long)OC * (t + 1) / nt);
        for (size_t n = 0; n < N; n++)
            for (int o = o0; o < o1; o++) dbias[o] += dout[n * OC + o];
    }
}

// linear_backward's body, the input fp32 (inp) or already bf16 (inp16).
static void backward_with_bias(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const uint16_t *inp16, const float *weight, size_t N, int IC, int OC) {
    backward(dinp, 1.0f, dweight, IC, dout, inp, inp16, weight, N, IC, OC);
    if (dbias) bias_grad(dbias, dout, N, OC);
}

void linear_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout, const uint16_t *inp,
                          const float *weight, size_t N, int IC, int OC) {
    backward_with_bias(dinp, dweight, dbias, dout, NULL, inp, weight, N, IC, OC);
}

void linear_input_grad(float *dinp, const float *dout, const float *weight, size_t ldw, size_t N, int IC,
                       int OC) {
    backward(dinp, 0.0f, NULL, ldw, dout, NULL, NULL, weight, N, IC, OC);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, size_t N, int IC, int OC) {
    backward_with_bias(dinp, dweight, dbias, dout, inp, NULL, weight, N, IC, OC);
}
