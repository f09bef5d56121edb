// evaluate.c: the copy task's validation and test sets come from their own seeds, so
// every evaluation of a run sees the same sequences; text splits are read in order.
// Data-parallel ranks each take a contiguous share of the windows and sum their counts.
#include "evaluate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "../data/copy.h"
#include "batch.h"
#include "dist.h"

#define COPY_EVAL_SEQUENCES 64  // per split

// The stream that masks window k of split (a masked LM's evaluation).
static uint64_t mask_stream(const Config *cfg, int split, size_t k) {
    return hash_stream((uint64_t)cfg->train.seed, 0xe7a1, (uint64_t)split, (uint64_t)k);
}

// This rank's share [*lo, *hi) of the windows evaluated: the first n, or with max_tokens > 0
// the first that hold max_tokens labels (T - 1 each), whatever the number of ranks.
static void my_share(size_t n, long long max_tokens, int T, size_t *lo, size_t *hi) {
    if (max_tokens > 0) {
        size_t need = (size_t)((max_tokens + T - 2) / (T - 1));
        if (need < n) n = need;
    }
    int r = dist_rank(), N = dist_size();
    *lo = n * r / N;
    *hi = n * (r + 1) / N;
}

int evaluate(Model *m, const Config *cfg, Dataset *d, int split, long long max_tokens, long long step,
             const float *const *rotations, EvalResult *r, Progress *prog, FILE *predictions, char *err, size_t cap) {
    int B = m->spec.B, T = cfg->data.seq_len, rc = 0;  // the data's rows; the model's are bt.T
    Batch bt;
    batch_init(&bt, B, cfg);
    int *tok = bt.tok;
    double sums[4] = {0};  // nll, labels, correct, scored
    ForwardArgs a = {.step = step, .rotations = rotations};  // no dropout
    // a masked LM masks each window with a stream of its own: the same masks every evaluation
    int masked = cfg->model.head == HEAD_LM && cfg->train.objective == OBJECTIVE_MASKED;
    size_t *first_of = xmalloc((size_t)B * sizeof(size_t));
    size_t lo, hi;
    if (d->kind == DATA_COPY) {
        Rng rng;
        rng_seed(&rng, hash_stream((uint64_t)cfg->train.seed, 0x5e7, split, 0));
        int *all = xmalloc((size_t)COPY_EVAL_SEQUENCES * T * sizeof(int));
        copy_batch(all, COPY_EVAL_SEQUENCES, T, cfg->model.vocab, &rng);
        a.score_from = masked ? 0 : copy_scored_from(T);
        my_share(COPY_EVAL_SEQUENCES, max_tokens, T, &lo, &hi);
        for (size_t done = lo; done < hi; done += B) {
            int b = (int)(hi - done < (size_t)B ? hi - done : (size_t)B);
            memcpy(tok, all + done * T, (size_t)b * T * sizeof(int));
            for (int i = 0; i < b; i++) bt.valid[i] = T;
            batch_fit(&bt, b, cfg);
            for (int i = 0; masked && i < b; i++) batch_mask_row(&bt, i, cfg, mask_stream(cfg, split, done + i));
            batch_args(&bt, cfg, &a);
            sums[0] += model_forward(m, tok, b, bt.T, &a) * m->act.n_labels;
            sums[1] += m->act.n_labels;
            sums[2] += m->act.correct;
            sums[3] += m->act.scored;
        }
        xfree(all);
    } else {
        size_t windows = dataset_eval_windows(d, split, T);
        if (windows == 0)  // a score of nothing would read as a perfect 0.000
            rc = set_error(err, cap, "the %s split holds no sequence of %d tokens (%zu bytes)",
                           split == SPLIT_VALID ? "validation" : "test", T, d->count[split]);
        my_share(windows, max_tokens, T, &lo, &hi);
        // labels in the split: text predicts every byte after its first, images all but the first
        long long all = d->kind == DATA_IMAGENET64 ? (long long)windows * (T - 1)
                        : d->kind == DATA_LISTOPS  ? (long long)windows
                                                   : (long long)d->count[split] - 1;
        long long total = (max_tokens > 0 && max_tokens < all ? max_tokens : all) / dist_size();  // about this rank's
        for (size_t k = lo; !rc && k < hi;) {
            // full windows go in batches; the tail window alone, with its skip
            int b = 0, skip = 0;
            while (b < B && k < hi) {
                // a batch holds sequences of one padded length: each is scored as it would be alone
                long long len = plan_padded_length(&cfg->model, dataset_eval_length(d, split, T, k));
                if (b > 0 && len != plan_padded_length(&cfg->model, bt.valid[0])) break;
                int s;
                if (dataset_eval_window(d, split, T, k, tok + (size_t)b * T, batch_meta(&bt, b, cfg), &s, err, cap)) {
                    rc = -1;
                    break;
                }
                if (s > 0 && b > 0) break;
                first_of[b] = k;
                k++;
                b++;
                if (s > 0) { skip = s; break; }
            }
            if (rc) break;
            batch_fit(&bt, b, cfg);
            for (int i = 0; masked && i < b; i++) batch_mask_row(&bt, i, cfg, mask_stream(cfg, split, first_of[i]));
            batch_args(&bt, cfg, &a);
            a.loss_from = skip + 1;
            sums[0] += model_forward(m, tok, b, bt.T, &a) * m->act.n_labels;
            sums[1] += m->act.n_labels;
            sums[2] += m->act.correct;
            sums[3] += m->act.scored;
            for (int i = 0; predictions && cfg->model.head == HEAD_CLASSIFIER && i < b; i++)
                fprintf(predictions, "%zu\t%d\t%d\n", first_of[i], m->act.seq_pred[i], bt.labels[i]);
            long long done = (long long)sums[1];
            if (prog) progress_count(prog, "eval", done < total && k < hi ? done : total, total, sums[0] / sums[1]);
        }
    }
    xfree(first_of);
    batch_free(&bt);
    if (rc) return rc;  // a rank that fails ends the job (the caller's dist_fail) before the sum waits
    dist_sum(sums, 4);
    r->tokens = (long long)sums[1];
    r->loss_nats = sums[1] > 0 ? sums[0] / sums[1] : 0;
    r->bits = r->loss_nats / log(2.0);
    // accuracy: the copied half's, the masked tokens', or the classes'; none for next-token text
    r->accuracy = sums[3] > 0 && (d->kind == DATA_COPY || masked || cfg->model.head == HEAD_CLASSIFIER) ? sums[2] / sums[3] : -1;
    return 0;
}
