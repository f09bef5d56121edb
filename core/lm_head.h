// lm_head.h: the top of the model: LayerNorm over concat(y1, y2) (2C), hidden
// dropout, dense to the vocabulary with bias, and next-token cross-entropy
// (position t predicts tokens[t+1]; HF's shifted loss over T-1 labels).
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
} HeadShape;

size_t lm_head_scratch_floats(const HeadShape *s);

// Returns the summed negative log-likelihood (nats) over positions t < T-1 whose
// label tokens[t+1] is >= 0 and t+1 >= s->loss_from. logits (T, V) is written when not NULL; correct (may
// be NULL) counts labels at positions >= s->score_from whose argmax is right.
double lm_head_forward(float *logits, long *correct, const float *y1, const float *y2,
                       const int *tokens, const HeadParams *p, const HeadShape *s, float *scratch);

// Backpropagates scale * (summed NLL): dy1, dy2 (T, C) +=, parameter gradients +=. Only the
// loss over every label (s->loss_from <= 1): evaluation tails have no backward.
void lm_head_backward(float *dy1, float *dy2, HeadParams *grad, float scale, const float *y1,
                      const float *y2, const int *tokens, const HeadParams *p,
                      const HeadShape *s, float *scratch);

#endif
