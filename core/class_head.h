// class_head.h: a sequence classifier on top of the reversible layers: ReformerEncoder's final
// LayerNorm over concat(y1, y2) (2C) and hidden dropout, then HuggingFace's
// ReformerClassificationHead on one pooled row:
//   u = pool(rows); z = out_proj(drop(tanh(dense(drop(u)))))    dense: 2C -> C, out_proj: C -> K
// and cross-entropy against the sequence's class. Pooling: the first position (HF's `<s>` token,
// what imported models use), the mean over the real positions (the padding left out), or the mean of
// the first and the last real position ("ends": each sees its own end of a long sequence through
// local attention, as a bidirectional RNN's two final states do).
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_CLASS_HEAD_H
#define REFORMER_CLASS_HEAD_H

#include <stddef.h>
#include <stdint.h>

enum { POOL_FIRST = 0, POOL_MEAN = 1, POOL_ENDS = 2 };
// Their names in configs, indexed by the enum (NULL-terminated).
extern const char *const pooling_names[];

typedef struct {
    float *ln_w, *ln_b;        // (2C), (2C)  reformer.encoder.layer_norm
    float *dense_w, *dense_b;  // (C, 2C), (C)
    float *out_w, *out_b;      // (K, C), (K)
} ClassHeadParams;

typedef struct {
    int T, C, K;
    int valid;        // real positions (0: all T); the rest is padding
    int pooling;      // POOL_FIRST, POOL_MEAN or POOL_ENDS
    float eps;
    float dropout;    // hidden dropout (after the LayerNorm) and the classifier's, as HF's default
    uint64_t stream;
} ClassHeadShape;

size_t class_head_scratch_floats(const ClassHeadShape *s);

// One sequence: logits (K) written when not NULL; returns the NLL (nats) of label (0 <= label < K),
// or 0 with label < 0 (no loss); *pred receives the argmax class when pred is not NULL.
double class_head_forward(float *logits, int *pred, const float *y1, const float *y2, int label,
                          const ClassHeadParams *p, const ClassHeadShape *s, float *scratch);

// Backpropagates scale * NLL of label: dy1, dy2 (T, C) +=, parameter gradients +=.
void class_head_backward(float *dy1, float *dy2, ClassHeadParams *grad, float scale, const float *y1,
                         const float *y2, int label, const ClassHeadParams *p, const ClassHeadShape *s,
                         float *scratch);

#endif
