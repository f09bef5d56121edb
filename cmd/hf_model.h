// hf_model.h: HuggingFace model directories (config.json + model.safetensors of a
// ReformerModelWithLMHead, ReformerForMaskedLM or ReformerForSequenceClassification): the config
// mapped onto ours, the weights by their names.
#ifndef REFORMER_HF_MODEL_H
#define REFORMER_HF_MODEL_H

#include <stddef.h>

#include "../core/model.h"

// Reads DIR/config.json into c (reformer_config_default for what HF leaves out);
// *max_len receives the axial positions (the longest sequence). The head follows "architectures"
// (none named: ReformerModelWithLMHead): an LM head for ReformerModelWithLMHead and
// ReformerForMaskedLM, the classifier (first-position pooling, classes from num_labels or
// id2label) for ReformerForSequenceClassification; another head (question answering, ...) is
// refused in one line. *objective (when not NULL) receives what the LM head learns:
// OBJECTIVE_NEXT (ReformerModelWithLMHead) or OBJECTIVE_MASKED (ReformerForMaskedLM);
// OBJECTIVE_NEXT for a classifier. Returns 0 or -1 with err.
int hf_read_config(const char *dir, ReformerConfig *c, int *max_len, int *objective, char *err, size_t cap);

// Loads DIR/model.safetensors into m, built from hf_read_config's config. Every model
// tensor must be present with its shape and every file tensor must be known.
int hf_load_weights(const char *dir, Model *m, char *err, size_t cap);

// Writes m as a HuggingFace model directory (config.json + model.safetensors) that the
// matching class loads: ReformerModelWithLMHead, ReformerForMaskedLM (objective OBJECTIVE_MASKED)
// or ReformerForSequenceClassification. DIR is created if missing.
int hf_export(const char *dir, const Model *m, int objective, char *err, size_t cap);

// --rotations FILE: LSH rotations as HuggingFace draws them, "rotations.<k>" for the k-th
// LSH layer shaped (heads, head size, hashes, buckets / 2), into rotations (MAX_LAYERS
// entries, NULL for other layers): ForwardArgs.rotations. *block owns them (free() it
// after the model is done). Returns 0 or -1 with err.
int hf_load_rotations(const char *path, const Model *m, const float **rotations, float **block, char *err,
                      size_t cap);

// DIR/reformer.json {"token_offset": K}: token = byte + K, which HF's config.json cannot
// say (HF's enwik8 models use 2). Absent: 0. Returns 0 or -1 with err.
int hf_read_token_offset(const char *dir, int *offset, char *err, size_t cap);
int hf_write_token_offset(const char *dir, int offset, char *err, size_t cap);

#endif
