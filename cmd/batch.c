// batch.c: one place decides, from the config, which of padding, masking and labels a batch has.
#include "batch.h"

#include <string.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "../data/mlm.h"

enum { SITE_MLM = 0x3a5c };

void batch_init(Batch *b, int B, const Config *c) {
    memset(b, 0, sizeof(*b));
    int T = config_model_length(c);
    b->cap_B = B;
    b->cap_T = T;
    b->data_T = c->data.seq_len;
    b->tok = xcalloc((size_t)B * T, sizeof(int));
    b->labels = xcalloc((size_t)B * T, sizeof(int));
    b->valid = xcalloc((size_t)B, sizeof(int));
}

void batch_free(Batch *b) {
    xfree(b->tok);
    xfree(b->labels);
    xfree(b->valid);
    memset(b, 0, sizeof(*b));
}

SeqMeta batch_meta(Batch *b, int row, const Config *c) {
    return (SeqMeta){b->valid + row, c->model.head == HEAD_CLASSIFIER ? b->labels + row : NULL};
}

void batch_fit(Batch *b, int B, const Config *c) {
    b->B = B;
    int longest = 1;
    for (int i = 0; i < B; i++) longest = imax(longest, b->valid[i]);
    b->T = (int)plan_padded_length(&c->model, longest);
    dataset_restride(b->tok, B, b->data_T, b->T);
}

void batch_mask_row(Batch *b, int row, const Config *c, uint64_t stream) {
    size_t at = (size_t)row * b->T;
    mlm_mask(b->tok + at, b->labels + at, b->T, b->valid[row], c->train.mask_rate, config_mask_id(c), c->model.vocab,
             stream);
}

uint64_t batch_train_mask_stream(const Config *c, long long step, int seq) {
    return hash_stream((uint64_t)c->train.seed, (uint64_t)step, SITE_MLM, (uint64_t)seq);
}

void batch_args(const Batch *b, const Config *c, ForwardArgs *a) {
    a->valid = c->data.kind == DATA_LISTOPS || b->T != b->data_T ? b->valid : NULL;
    a->labels = c->model.head == HEAD_CLASSIFIER || c->train.objective == OBJECTIVE_MASKED ? b->labels : NULL;
}
