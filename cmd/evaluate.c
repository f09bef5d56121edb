// evaluate.c: the copy task's fixed validation and test sets come from their own
// seeds, so every evaluation of a run sees the same sequences.
#include "evaluate.h"

#include <math.h>
#include <stdio.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "../data/copy.h"

#define COPY_EVAL_SEQUENCES 64  // per split

int evaluate(Model *m, const Config *cfg, int split, long long max_tokens, EvalResult *r, char *err,
             size_t cap) {
    if (cfg->data.kind != DATA_COPY) {
        snprintf(err, cap, "data.kind: only 'copy' can be evaluated in this build");
        return -1;
    }
    int B = m->B, T = cfg->data.seq_len, saved_training = m->training, saved_score = m->score_from;
    Rng rng;
    rng_seed(&rng, hash_stream((uint64_t)cfg->train.seed, 0x5e7, split, 0));
    int *tok = xmalloc((size_t)B * T * sizeof(int));
    double nll = 0;
    long long labels = 0, correct = 0, scored = 0;
    m->training = 0;
    m->score_from = copy_scored_from(T);
    for (int done = 0; done < COPY_EVAL_SEQUENCES; done += B) {
        int b = imin(B, COPY_EVAL_SEQUENCES - done);
        copy_batch(tok, b, T, cfg->model.vocab, &rng);
        double loss = model_forward(m, tok, b, T);
        nll += loss * m->n_labels;
        labels += m->n_labels;
        correct += m->correct;
        scored += m->scored;
        if (max_tokens > 0 && labels >= max_tokens) break;
    }
    m->training = saved_training;
    m->score_from = saved_score;
    xfree(tok);
    r->tokens = labels;
    r->loss_nats = labels ? nll / labels : 0;
    r->bits = r->loss_nats / log(2.0);
    r->accuracy = scored ? (double)correct / scored : -1;
    return 0;
}
