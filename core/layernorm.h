// layernorm.h: LayerNorm over the last dimension, with its backward.
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_LAYERNORM_H
#define REFORMER_LAYERNORM_H

#include <stddef.h>
#include <stdint.h>

// out (N, C) = (inp - mean) * rstd * weight + bias; mean, rstd (N) are saved for backward.
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, size_t N, int C, float eps);

// The same with out rounded to bf16 (how bf16 precision's products read it), formed in fp32 in
// tmp (N, C) first: one rounding pass where each product reading it would make its own.
void layernorm_forward_bf16(uint16_t *out, float *tmp, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, size_t N, int C, float eps);

// forward: out = xhat * w + b with xhat = (x - mean) * rstd, so
// dw += sum_n dout * xhat, db += sum_n dout,
// dx += rstd * (dout*w - mean_c(dout*w) - xhat * mean_c(dout*w * xhat)).
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *mean, const float *rstd,
                        const float *weight, size_t N, int C);

#endif
