// evaluate.h: evaluation shared by `train` (validation) and `eval`.
#ifndef REFORMER_EVALUATE_H
#define REFORMER_EVALUATE_H

#include "../core/model.h"
#include "../data/dataset.h"
#include "config.h"
#include "progress.h"

typedef struct {
    double loss_nats;   // mean NLL per predicted token
    double bits;        // loss_nats / ln 2: bits per character for enwik8
    long long tokens;   // predicted tokens
    double accuracy;    // argmax accuracy: the copy task's copied half, a masked LM's masked tokens,
                        // a classifier's sequences; -1 for next-token text and images
} EvalResult;

// Evaluates split (SPLIT_VALID or SPLIT_TEST) in eval mode (no dropout). Text: every
// byte of the split after its first, in windows of data.seq_len; images: each image's
// 12,287 subpixels after its first (bits per dim); copy: a fixed set of sequences per
// split. max_tokens > 0 evaluates the first windows that hold that many labels (T - 1 a window).
// The forward passes hash with the rotations of `step` (drawn, or `rotations` where given,
// as ForwardArgs.rotations). prog, when given, shows the tokens evaluated so far
// (progress_count). A masked LM masks each window with a stream of its own (train.mask_rate; 0:
// every position scored unmasked). A classifier's sequences are ListOps expressions, scored by
// their class; with predictions, one line per sequence "INDEX<TAB>PREDICTED<TAB>LABEL" goes there.
// Returns 0, or -1 with err when the data cannot be read.
int evaluate(Model *m, const Config *cfg, Dataset *d, int split, long long max_tokens, long long step,
             const float *const *rotations, EvalResult *r, Progress *prog, FILE *predictions, char *err, size_t cap);

#endif
