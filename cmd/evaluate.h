// evaluate.h: evaluation shared by `train` (validation) and `eval`.
#ifndef REFORMER_EVALUATE_H
#define REFORMER_EVALUATE_H

#include "../core/model.h"
#include "config.h"

enum { SPLIT_VALID = 0, SPLIT_TEST = 1 };

typedef struct {
    double loss_nats;   // mean NLL per predicted token
    double bits;        // loss_nats / ln 2
    long long tokens;   // predicted tokens
    double accuracy;    // copy task: argmax accuracy on the copied half; -1 otherwise
} EvalResult;

// Evaluates the split in eval mode (no dropout) with batches of the model's size.
// max_tokens > 0 stops after that many predicted tokens (whole batches).
// Returns 0, or -1 with err.
int evaluate(Model *m, const Config *cfg, int split, long long max_tokens, EvalResult *r, char *err,
             size_t cap);

#endif
