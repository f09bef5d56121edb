// lm_head.h: the top of the model: LayerNorm over concat(y1, y2) (2C), hidden
// dropout, dense to the vocabulary with bias, and cross-entropy against labels: the next
// token for a causal LM (position t predicts labels[t+1]; HF's shifted loss over T-1 labels,
// ReformerModelWithLMHead), or each position's own label for a masked LM (labels[t]; HF's
// ReformerForMaskedLM, unshifted). A label < 0 is not in the loss.
// Work runs over `chunk` positions at a time so no (T, V) buffer exists whole.
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_LM_HEAD_H
#define REFORMER_LM_HEAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float *ln_w, *ln_b;  // (2C), (2C)
    float *w, *b;        // (V, 2C), (V)
} HeadParams;

typedef struct {
    int T, C, V, chunk;
    int score_from;  // first label position counted in `correct`
    int loss_from;   // first label position counted in the loss (evaluation tails)
    float eps, dropout;
    uint64_t stream;
    int valid;       // positions from here on are padding: no label there (0: none)
    int shift;       // 1: position t predicts labels[t + 1] (causal LM); 0: labels[t] (masked LM)
} HeadShape;

// The labels in the loss of one sequence: at label positions >= from, before the padding.
long long lm_head_count_labels(const int *labels, const HeadShape *s, int from);

size_t lm_head_scratch_floats(const HeadShape *s);

// Returns the summed negative log-likelihood (nats) over the positions whose label (at label
// position t + shift) is >= 0, lies before the padding and at or after s->loss_from. logits (T, V)
// is written when not NULL; correct (may be NULL) counts labels at label positions >=
// s->score_from whose argmax is right.
double lm_head_forward(float *logits, long *correct, const float *y1, const float *y2,
                       const int *labels, const HeadParams *p, const HeadShape *s, float *scratch);

// Backpropagates scale * (summed NLL): dy1, dy2 (T, C) +=, parameter gradients +=. Only the
// loss over every label (s->loss_from <= s->shift): evaluation tails have no backward.
void lm_head_backward(float *dy1, float *dy2, HeadParams *grad, float scale, const float *y1,
                      const float *y2, const int *labels, const HeadParams *p,
                      const HeadShape *s, float *scratch);

#endif
