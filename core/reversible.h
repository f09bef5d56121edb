// reversible.h: one reversible Reformer layer (RevNet, HuggingFace ReformerLayer):
//   y1 = x1 + F(x2),  F = Attention(LayerNorm(.))
//   y2 = x2 + G(y1),  G = ChunkedFFN(LayerNorm(.))
// The backward pass needs no stored activations: it recomputes the inputs,
//   x2 = y2 - G(y1);  x1 = y1 - F(x2),
// and each half's internals, one sequence at a time.
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_REVERSIBLE_H
#define REFORMER_REVERSIBLE_H

#include "attention.h"
#include "ffn.h"

typedef struct {
    AttnParams attn;
    FfnParams ffn;
} LayerParams;

typedef struct {
    AttnShape attn;
    FfnShape ffn;
    int B;
} LayerShape;

typedef struct {
    float *attn;  // attention_work_floats
    float *ffn;   // ffn_scratch_floats
} LayerWork;

// The dropout streams of sequence b's attention and feed-forward halves.
uint64_t reversible_attn_stream(uint64_t stream, int b);
uint64_t reversible_ffn_stream(uint64_t stream, int b);

// In place: x1 (B, T, C) becomes y1, x2 becomes y2. For LSH layers, rot given:
// hash and write sorted (B, NH, NR*T); rot NULL: reuse sorted from an earlier call.
void reversible_forward(float *x1, float *x2, int *sorted, const float *rot,
                        const LayerParams *p, const LayerShape *s, uint64_t stream, LayerWork *w);

// In place: y1, y2 become x1, x2; dy1, dy2 become dx1, dx2:
//   x2 = y2 - G(y1); dy1 += G'(y1)^T dy2   (then dx1 = dy1)
//   x1 = y1 - F(x2); dy2 += F'(x2)^T dy1   (then dx2 = dy2)
void reversible_backward(float *y1, float *y2, float *dy1, float *dy2, LayerParams *grad,
                         const int *sorted, const LayerParams *p, const LayerShape *s,
                         uint64_t stream, LayerWork *w);

#endif
