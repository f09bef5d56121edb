// reversible.h: one reversible Reformer layer (RevNet, HuggingFace ReformerLayer):
//   y1 = x1 + F(x2),  F = Attention(LayerNorm(.))
//   y2 = x2 + G(y1),  G = ChunkedFFN(LayerNorm(.))
// The backward pass needs no stored activations: it recomputes the inputs,
//   x2 = y2 - G(y1);  x1 = y1 - F(x2),
// and each half's internals, one sequence at a time. When memory allows, a layer may keep
// its forward's activations instead and skip that recompute (the same results up to the
// rounding of the inverse).
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_REVERSIBLE_H
#define REFORMER_REVERSIBLE_H

#include "attention.h"
#include "ffn.h"

typedef struct {
    AttnParams attn;
    FfnParams ffn;
} LayerParams;

// A layer's fixed description, built once from the config at model_init (at the model's
// largest length, with the configured dropout rates).
typedef struct {
    AttnShape attn;
    FfnShape ffn;
} LayerShape;

// What changes from call to call.
typedef struct {
    int T, B;          // this call's sequence length and batch
    int training;      // dropout on
    uint64_t stream;   // the layer's random stream at this step (dropout masks)
    int first_seq;     // global index of the batch's first sequence (its masks' stream)
    const int *valid;  // (B) each sequence's real length: positions from there on are padding,
                       // which takes an LSH bucket of its own and is masked as a key; NULL: none
} LayerPass;

// The shapes one call runs with: fixed at pass->T, dropout only when training.
LayerShape layer_shape_at(const LayerShape *fixed, const LayerPass *pass);
// Sequence b's padding (pass->valid) in s's attention windows.
void layer_shape_seq(LayerShape *s, const LayerPass *pass, int b);

typedef struct {
    float *attn;  // attention_work_floats
    float *ffn;   // ffn_scratch_floats
} LayerWork;

// The dropout streams of sequence b's attention and feed-forward halves.
uint64_t reversible_attn_stream(uint64_t stream, int b);
uint64_t reversible_ffn_stream(uint64_t stream, int b);

// Floats per sequence that a layer keeping its activations stores, at the fixed shape's
// length: its inputs and everything its backward would otherwise recompute (about 12 KB a
// token for B6). A kept layer's backward runs no matrix product of its forward again: a
// quarter of the layer's training FLOPs.
size_t reversible_keep_floats(const LayerShape *fixed);

// In place: x1 (B, T, C) becomes y1, x2 becomes y2. An LSH layer's bucket order is
// (B, NH, NR*T), hashed or reused as `buckets` says. keep: NULL, or B sequences of
// reversible_keep_floats(fixed) floats for the backward.
void reversible_forward(float *x1, float *x2, const BucketOrder *buckets, const LayerParams *p,
                        const LayerShape *fixed, const LayerPass *pass, LayerWork *w, float *keep);

// In place: y1, y2 become x1, x2; dy1, dy2 become dx1, dx2:
//   x2 = y2 - G(y1); dy1 += G'(y1)^T dy2   (then dx1 = dy1)
//   x1 = y1 - F(x2); dy2 += F'(x2)^T dy1   (then dx2 = dy2)
// order: the bucket order the forward pass used. kept: NULL (recompute), or what the forward
// kept for these sequences: then x1, x2 are the kept inputs and kept is consumed.
void reversible_backward(float *y1, float *y2, float *dy1, float *dy2, LayerParams *grad,
                         const int *order, const LayerParams *p, const LayerShape *fixed,
                         const LayerPass *pass, LayerWork *w, float *kept);

#endif
