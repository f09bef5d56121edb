// layernorm.c: HuggingFace nn.LayerNorm semantics (biased variance, eps inside the sqrt).
#include "layernorm.h"

#include <math.h>

#include "common.h"
#include "gemm.h"
#include "profile.h"

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, size_t N, int C, float eps) {
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static) if (N > 64)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;  // (C)
        float *y = out + n * C;        // (C)
        float sum = 0.0f;
        #pragma omp simd reduction(+ : sum)
        for (int c = 0; c < C; c++) sum += x[c];
        float m = sum / C;
        float var = 0.0f;  // two passes: no cancellation for large means
        #pragma omp simd reduction(+ : var)
        for (int c = 0; c < C; c++) var += (x[c] - m) * (x[c] - m);
        float s = 1.0f / sqrtf(var / C + eps);
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = s;
    }
    profile_add_to(&profile_norm_seconds, t0);
}

void layernorm_forward_bf16(uint16_t *out, float *tmp, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, size_t N, int C, float eps) {
    layernorm_forward(tmp, mean, rstd, inp, weight, bias, N, C, eps);
    gemm_round_bf16(out, tmp, N, C, C, !omp_in_parallel() && threads_get() > 1);
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *mean, const float *rstd,
                        const float *weight, size_t N, int C) {
    double t0 = now_seconds();
    if (dinp) {
        #pragma omp parallel for schedule(static) if (N > 64)
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *dy = dout + n * C;  // (C)
            float *dx = dinp + n * C;                          // (C)
            float m = mean[n], s = rstd[n];
            float sum_g = 0.0f, sum_gx = 0.0f;
            #pragma omp simd reduction(+ : sum_g, sum_gx)
            for (int c = 0; c < C; c++) {
                float g = dy[c] * weight[c];
                sum_g += g;
                sum_gx += g * (x[c] - m) * s;
            }
            float mg = sum_g / C, mgx = sum_gx / C;
            for (int c = 0; c < C; c++) {
                float xhat = (x[c] - m) * s;
                dx[c] += s * (dy[c] * weight[c] - mg - xhat * mgx);
            }
        }
    }
    // Parameter gradients are split by column, so each thread owns its sums and
    // the result does not depend on the thread count or schedule.
    if (dweight || dbias) {
        #pragma omp parallel if (N > 64)
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            int c0 = (int)((long)C * t / nt), c1 = (int)((long)C * (t + 1) / nt);
            for (size_t n = 0; n < N; n++) {
                const float *x = inp + n * C, *dy = dout + n * C;
                float m = mean[n], s = rstd[n];
                for (int c = c0; c < c1; c++) {
                    if (dweight) dweight[c] += dy[c] * (x[c] - m) * s;
                    if (dbias) dbias[c] += dy[c];
                }
            }
        }
    }
    profile_add_to(&profile_norm_seconds, t0);
}
