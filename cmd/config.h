// config.h: the JSON config, one table of keys (cmd/config.c) that drives parsing,
// range checks, defaults and `reformer --help-config`.
//
//   { "model": { "d_model": 256, "attn_layers": ["lsh", "local"], ... },
//     "data":  { "kind": "copy", "seq_len": 1024 },
//     "train": { "steps": 2000, "lr": 1e-3, ... } }
//
// Every key is checked: an unknown key, a wrong type, a value out of range or
// values that disagree give one line naming the key, and nothing is used.
#ifndef REFORMER_CONFIG_H
#define REFORMER_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "../core/gemm.h"
#include "../core/optim.h"
#include "../core/model.h"
#include "../data/dataset.h"


typedef struct {
    int batch;
    long long steps;
    int eval_every, save_every, log_every;
    long long seed;
    int threads;  // per process; 0: this machine's cores / the job's processes on it
    int shard_optimizer;    // data-parallel ranks keep a slice of the optimizer state each (ZeRO-1)
    long long eval_tokens;  // validation during training: at most this many tokens; 0: all
    long long memory_mb;    // MiB for kept activations (model_keep_layers); 0: recompute every
                            // layer; CONFIG_MIB_AUTO: from the memory free at the start
    int precision;          // PRECISION_FP32 or PRECISION_BF16 (core/gemm.h): the dense products'
    int objective;          // OBJECTIVE_NEXT or OBJECTIVE_MASKED (the LM head's labels)
    float mask_rate;        // masked LM: the share of positions chosen (data/mlm.h)
    int mask_id;            // masked LM: the token that replaces a chosen one; -1: vocab - 1
} TrainConfig;

// What the LM head learns: the next token (causal LM) or masked tokens (bidirectional).
enum { OBJECTIVE_NEXT = 0, OBJECTIVE_MASKED = 1 };
extern const char *const objective_names[];

#define CONFIG_MIB_AUTO (-1LL)

#define CONFIG_MAX_KEYS 128

typedef struct {
    ReformerConfig model;
    OptimConfig opt;
    DataConfig data;
    TrainConfig train;
    unsigned char given[CONFIG_MAX_KEYS];  // which keys the JSON set (the rest are defaults)
} Config;

void config_default(Config *c);

// Why a bidirectional model (model.causal false, HF is_decoder false) is refused a next-token
// objective: it would make the prediction with the answer in view.
#define CONFIG_NOT_CAUSAL                                                                           \
    "model.causal: false (HF is_decoder false): a next-token loss with attention that sees the next " \
    "token teaches and measures nothing; use train.objective \"mlm\" (masked LM) or model.head \"classifier\""
// Reads and validates path over the defaults. Returns 0, or -1 with one line in err.
int config_load(const char *path, Config *c, char *err, size_t cap);
// The same without the cross-key checks (each key's type and range are still checked): for
// fine-tuning, whose model section comes from --ckpt before config_validate runs.
int config_load_keys(const char *path, Config *c, char *err, size_t cap);
// The same from JSON text; `where` names the source in messages.
int config_parse(const char *json, const char *where, Config *c, char *err, size_t cap);
// Only the model section matters (bench); other sections are still validated.
int config_load_model(const char *path, ReformerConfig *model, char *err, size_t cap);
// Cross-key checks (also run by config_load). Returns 0 or -1 with err.
int config_validate(const Config *c, char *err, size_t cap);
// The checks of the model section alone, for sequences of up to seq_len tokens.
int config_validate_model(const ReformerConfig *m, int seq_len, char *err, size_t cap);
// The length the model runs a sequence of data.seq_len tokens at: padded at the end to a multiple
// of the chunk lengths (plan_padded_length) when they do not divide it.
int config_model_length(const Config *c);
// The mask id a masked-LM config uses (train.mask_id, or vocab - 1 when left at -1).
int config_mask_id(const Config *c);

// A foreign config file (HuggingFace's config.json) read through the same table: each
// alias names one of our keys and the file's name for it. Values pass the same type and
// range checks and config_validate_model, and messages name the file's keys. Other names
// in the file are ignored. *seq_len gets the model's positions (the longest sequence).
typedef struct {
    const char *key, *foreign;
    int required;
} KeyAlias;  // a list ends with {NULL}
int config_parse_mapped(const char *json, const char *where, const KeyAlias *map, Config *c, int *seq_len,
                        char *err, size_t cap);
// The first key of section `sec` ("model", "data", "train") whose value differs between
// a and b, written into out as "sec.key" and returned; NULL when the sections agree.
const char *config_first_difference(const Config *a, const Config *b, const char *sec, char *out, size_t cap);
// Whether the JSON set `key` ("section.name"), and the first key of `section` it set
// that is not in the NULL-terminated `except` names (NULL: none).
int config_given(const Config *c, const char *key);
const char *config_given_in(const Config *c, const char *section, const char *const *except);
// The shortest decimal text that reads back as v (0.1, not 0.10000000149011612).
void config_float_text(float v, char *text, size_t cap);
// Writes the resolved config as JSON (for logs and checkpoints); caller frees.
char *config_to_json(const Config *c);
// Whether the table types key ("model.ln_eps") as a float.
int config_key_is_float(const char *key);
// Prints every key with its type, range, default and meaning.
void config_print_help(FILE *out);

#endif
