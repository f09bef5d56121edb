// batch.h: what a training step or an evaluation feeds the model, as the task wants it: the
// data's tokens; each sequence's real length, the batch padded to its longest as the model's
// chunks need (ListOps' lengths differ; a data.seq_len the chunks do not divide pads every
// sequence); BERT's masking for a masked LM; and the labels the head scores (masked tokens, or
// each sequence's class).
#ifndef REFORMER_BATCH_H
#define REFORMER_BATCH_H

#include <stdint.h>

#include "../core/model.h"
#include "../data/dataset.h"
#include "config.h"

typedef struct {
    int cap_B, cap_T;  // what the buffers hold
    int data_T;        // the rows the data writes: data.seq_len tokens (ListOps: padded to it)
    int *tok;          // (cap_B, cap_T): rows data_T apart as the data writes them, T apart after batch_fit
    int *labels;       // masked LM: (cap_B, cap_T) each position's label; classifier: (cap_B) classes
    int *valid;        // (cap_B) each sequence's real length
    int B, T;          // the batch held now
} Batch;

// Buffers for B rows of data.seq_len tokens, run at up to config_model_length.
void batch_init(Batch *b, int B, const Config *c);
void batch_free(Batch *b);
// Where the data writes the lengths and classes of the sequences from row `row` on (classes only
// for a classifier: a masked LM's labels are its own).
SeqMeta batch_meta(Batch *b, int row, const Config *c);
// The B rows the data wrote (data_T apart, lengths in valid) become rows of the batch's length:
// the longest sequence padded as the model runs it (plan_padded_length).
void batch_fit(Batch *b, int B, const Config *c);
// A masked LM's row `row`: masked with `stream` at c->train.mask_rate (data/mlm.h), labels written.
void batch_mask_row(Batch *b, int row, const Config *c, uint64_t stream);
// The stream that masks global sequence `seq` of training step `step`.
uint64_t batch_train_mask_stream(const Config *c, long long step, int seq);
// The ForwardArgs fields this batch sets: valid (data with lengths) and labels (masked LM, classifier).
void batch_args(const Batch *b, const Config *c, ForwardArgs *a);

#endif
