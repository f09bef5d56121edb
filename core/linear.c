// linear.c: sgemm split across our own OpenMP threads. BLAS itself runs on one
// thread (threads_set), so there is one thread pool and no oversubscription;
// each split is fixed by the thread count, so results are reproducible.
#include "linear.h"

#include <cblas.h>

#include "common.h"

// Below this many rows per thread the split costs more than it gains.
#define MIN_ROWS_PER_THREAD 32

static int use_threads(size_t rows) {
    return !omp_in_parallel() && threads_get() > 1 && rows >= (size_t)MIN_ROWS_PER_THREAD * 2;
}

void linear_forward_ld(float *out, const float *inp, const float *weight, size_t ldw, size_t N,
                       int IC, int OC, float alpha, float beta) {
    if (N == 1) {  // one position (cached decoding): sgemv, which does not pack the weight
        #pragma omp parallel if (!omp_in_parallel() && threads_get() > 1 && OC >= 256)
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            int o0 = (int)((size_t)OC * t / nt), o1 = (int)((size_t)OC * (t + 1) / nt);
            if (o1 > o0)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, o1 - o0, IC, alpha, weight + (size_t)o0 * ldw, (int)ldw, inp,
                            1, beta, out + o0, 1);
        }
        return;
    }
    #pragma omp parallel if (use_threads(N))
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        size_t n0 = N * t / nt, n1 = N * (t + 1) / nt;
        if (n1 > n0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(n1 - n0), OC, IC, alpha,
                        inp + n0 * IC, IC, weight, (int)ldw, beta, out + n0 * OC, OC);
    }
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

void linear_backward_ld(float *dinp, float *dweight, size_t ldw, const float *dout,
                        const float *inp, const float *weight, size_t N, int IC, int OC) {
    #pragma omp parallel if (use_threads(N))
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        if (dinp) {  // rows of dinp are independent: split N
            size_t n0 = N * t / nt, n1 = N * (t + 1) / nt;
            if (n1 > n0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(n1 - n0), IC, OC, 1.0f,
                            dout + n0 * OC, OC, weight, (int)ldw, 1.0f, dinp + n0 * IC, IC);
        }
        // dW sums over N: split its rows (OC) so each thread owns its sums
        int o0 = (int)((long)OC * t / nt), o1 = (int)((long)OC * (t + 1) / nt);
        if (dweight && o1 > o0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, IC, (int)N, 1.0f,
                        dout + o0, OC, inp, IC, 1.0f, dweight + (size_t)o0 * ldw, (int)ldw);
    }
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
