// ffn.h: the chunked feed-forward block G(x) = FFN(LayerNorm(x)) of a reversible layer.
//
// forward: h = LN(x); a = drop1(h W1^T + b1); z = act(a); g = drop2(z W2^T + b2).
// Positions are independent, so the work runs over `chunk` positions at a time and
// the (N, F) intermediate never exists whole: scratch holds one chunk.
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_FFN_H
#define REFORMER_FFN_H

#include <stddef.h>
#include <stdint.h>

enum { ACT_GELU = 0, ACT_RELU = 1 };

typedef struct {
    float *ln_w, *ln_b;  // (C), (C)
    float *w1, *b1;      // (F, C), (F)
    float *w2, *b2;      // (C, F), (C)
} FfnParams;

typedef struct {
    int C, F, act, chunk;
    float eps, dropout;
    uint64_t stream;  // dropout masks; position n's masks depend only on (stream, n)
} FfnShape;

size_t ffn_scratch_floats(const FfnShape *s);

// Floats a forward over N positions keeps so that its backward recomputes no product: the
// LayerNorm output and statistics and the pre-activation (the activation is recomputed).
size_t ffn_keep_floats(const FfnShape *s, size_t N);

// out (N, C) += G(inp (N, C)). keep: NULL, or ffn_keep_floats(s, N) floats that receive
// what the backward would recompute.
void ffn_forward(float *out, const float *inp, const FfnParams *w, size_t N,
                 const FfnShape *s, float *scratch, float *keep);

// Recomputes G chunk by chunk (or, given kept, reads what the forward kept) and
// backpropagates dout (N, C) through it: dinp += dG^T dout, parameter gradients += . If y
// (N, C) is given, also y -= G(inp): the reversible inverse x2 = y2 - G(y1) in the same pass
// (only with the recompute).
void ffn_backward(float *dinp, FfnParams *grad, float *y, const float *dout, const float *inp,
                  const FfnParams *w, size_t N, const FfnShape *s, float *scratch, const float *kept);

#endif
