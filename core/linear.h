// linear.h: dense layers on gemm.h products, with weights stored as HuggingFace
// stores them: weight (OC, IC), so out = inp @ weight^T + bias.
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_LINEAR_H
#define REFORMER_LINEAR_H

#include <stddef.h>
#include <stdint.h>

// out (N, OC) = inp (N, IC) @ weight^T (IC, OC) + bias (OC); bias may be NULL.
// beta = 0 overwrites out, beta = 1 adds to it.
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    size_t N, int IC, int OC, float beta);

// forward: out = inp @ W^T + b, so dinp += dout @ W, dW += dout^T @ inp, db += sum_n dout.
// Any of dinp, dweight, dbias may be NULL.
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, size_t N, int IC, int OC);

// dinp = dout @ W, overwriting dinp (no zeroing pass before it); W's rows ldw floats apart.
void linear_input_grad(float *dinp, const float *dout, const float *weight, size_t ldw, size_t N, int IC,
                       int OC);

// The same on a block of a larger weight: weight rows are ldw floats apart (a
// head's columns of the attention output projection), no bias, and
// out = alpha * inp @ W^T + beta * out.
void linear_forward_ld(float *out, const float *inp, const float *weight, size_t ldw, size_t N,
                       int IC, int OC, float alpha, float beta);
void linear_backward_ld(float *dinp, float *dweight, size_t ldw, const float *dout,
                        const float *inp, const float *weight, size_t N, int IC, int OC);

// linear_forward (beta 0) and linear_backward in bf16 precision with the input already rounded to
// bf16 (N rows of IC): the same bits as from its fp32 form, which each product would round again.
void linear_forward_bf16(float *out, const uint16_t *inp, const float *weight, const float *bias, size_t N, int IC,
                         int OC);
void linear_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout, const uint16_t *inp,
                          const float *weight, size_t N, int IC, int OC);

#endif
