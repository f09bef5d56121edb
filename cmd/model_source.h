// model_source.h: where a command's model comes from, by what --ckpt names: our checkpoint
// file, or a HuggingFace model directory (config.json, model.safetensors and, when we wrote
// it, reformer.json). eval, sample and train (fine-tuning) all take either.
#ifndef REFORMER_MODEL_SOURCE_H
#define REFORMER_MODEL_SOURCE_H

#include <stddef.h>

#include "checkpoint.h"
#include "config.h"

// The config of path: a checkpoint's stored one, or for a directory HF's model config with
// our defaults elsewhere (data.seq_len: the model's positions; data.token_offset from
// reformer.json). *is_hf tells which. Returns 0 or -1 with one line in err.
int source_read_config(const char *path, Config *cfg, int *is_hf, char *err, size_t cap);
// Loads the parameters (and, for a checkpoint, st when given) into m built from that config.
int source_load(const char *path, int is_hf, Model *m, TrainState *st, char *err, size_t cap);

// eval/sample --attn KIND (-1: as trained) and --hashes N (0: as trained): the layers run
// under another attention with their parameters unchanged, for sequences of T tokens.
// LSH and full layers share their projections (shared query/key), so each becomes the other;
// "chunks" runs them as the same shared-QK attention over position chunks (one bucket, one
// round: each chunk of lsh_chunk sees itself and lsh_chunks_before chunks back), which answers
// "would attending to neighbours do?"; "full" on a local layer widens its chunk to the sequence.
// A local layer has separate query and key weights and cannot hash: "lsh" on it is refused.
// Returns 0 or -1 with err.
enum { RUN_LSH, RUN_CHUNKS, RUN_FULL };
extern const char *const run_attention_names[];  // indexed by RUN_*, NULL-terminated
int source_override_attention(ReformerConfig *c, int kind, int hashes, int T, char *err, size_t cap);


#endif
