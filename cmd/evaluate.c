// evaluate.c: the copy task's validation and test sets come from their own seeds, so
// every evaluation of a run sees the same sequences; text splits are read in order.
#include "evaluate.h"

#include <math.h>
#include <stdio.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "../data/copy.h"

#define COPY_EVAL_SEQUENCES 64  // per split

int evaluate(Model *m, const Config *cfg, Dataset *d, int split, long long max_tokens, long long step,
             const float *const *rotations, EvalResult *r, Progress *prog, char *err, size_t cap) {
    int B = m->B, T = cfg->data.seq_len, rc = 0;
    int *tok = xmalloc((size_t)B * T * sizeof(int));
    double nll = 0;
    long long labels = 0, correct = 0, scored = 0;
    ForwardArgs a = {.step = step, .rotations = rotations};  // no dropout
    if (d->kind == DATA_COPY) {
        Rng rng;
        rng_seed(&rng, hash_stream((uint64_t)cfg->train.seed, 0x5e7, split, 0));
        a.score_from = copy_scored_from(T);
        for (int done = 0; done < COPY_EVAL_SEQUENCES; done += B) {
            int b = imin(B, COPY_EVAL_SEQUENCES - done);
            copy_batch(tok, b, T, cfg->model.vocab, &rng);
            nll += model_forward(m, tok, b, T, &a) * m->n_labels;
            labels += m->n_labels;
            correct += m->correct;
            scored += m->scored;
            if (max_tokens > 0 && labels >= max_tokens) break;
        }
    } else {
        size_t windows = dataset_eval_windows(d, split, T);
        if (windows == 0)  // a score of nothing would read as a perfect 0.000
            rc = set_error(err, cap, "the %s split holds no sequence of %d tokens (%zu bytes)",
                           split == SPLIT_VALID ? "validation" : "test", T, d->count[split]);
        // labels in the split: text predicts every byte after its first, images all but the first
        long long all = d->kind == DATA_IMAGENET64 ? (long long)windows * (T - 1) : (long long)d->count[split] - 1;
        long long total = max_tokens > 0 && max_tokens < all ? max_tokens : all;
        for (size_t k = 0; k < windows;) {
            // full windows go in batches; the tail window alone, with its skip
            int b = 0, skip = 0;
            while (b < B && k < windows) {
                int s;
                if (dataset_eval_window(d, split, T, k, tok + (size_t)b * T, &s, err, cap)) { rc = -1; break; }
                if (s > 0 && b > 0) break;
                k++;
                b++;
                if (s > 0) { skip = s; break; }
            }
            if (rc) break;
            a.loss_from = skip + 1;
            nll += model_forward(m, tok, b, T, &a) * m->n_labels;
            labels += m->n_labels;
            if (prog) progress_count(prog, "eval", labels < total ? labels : total, total, nll / labels);
            if (max_tokens > 0 && labels >= max_tokens) break;
        }
    }
    xfree(tok);
    r->tokens = labels;
    r->loss_nats = labels ? nll / labels : 0;
    r->bits = r->loss_nats / log(2.0);
    r->accuracy = scored ? (double)correct / scored : -1;
    return rc;
}
