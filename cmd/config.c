// config.c: the config table and its cJSON reader.
#include "config.h"

#include "args.h"
#include "../data/files.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/attention.h"
#include "../core/attention_lsh.h"
#include "../core/class_head.h"
#include "../core/common.h"
#include "../core/ffn.h"

// T_MIB: a count of MiB, or the string "auto" (stored as CONFIG_MIB_AUTO)
typedef enum { T_INT, T_I64, T_FLOAT, T_BOOL, T_ENUM, T_STR, T_ATTN, T_PAIR, T_BUCKETS, T_MIB } Type;

static const char *const ACTS[] = {"gelu", "relu", NULL};
static const char *const SCHEDULES[] = {"constant", "rsqrt", "cosine", NULL};
static const char *const KINDS[] = {"copy", "enwik8", "imagenet64", "listops", NULL};
const char *const objective_names[] = {"lm", "mlm", NULL};
static const char *const PIXEL_ORDERS[] = {"rgb", "planar", NULL};  // PIXELS_RGB, PIXELS_PLANAR

typedef struct {
    const char *key;  // section.name
    Type type;
    size_t offset;
    double min, max;
    const char *const *choices;  // T_ENUM
    const char *doc;
} Key;

#define M(f) offsetof(Config, model.f)
#define O(f) offsetof(Config, opt.f)
#define D(f) offsetof(Config, data.f)
#define R(f) offsetof(Config, train.f)
static const Key KEYS[] = {
    {"model.vocab", T_INT, M(vocab), 2, 1 << 20, 0, "vocabulary size (bytes: 256; HF enwik8: 258)"},
    {"model.d_model", T_INT, M(d_model), 2, 65536, 0, "hidden size of each reversible half"},
    {"model.d_ff", T_INT, M(d_ff), 1, 1 << 20, 0, "feed-forward inner size"},
    {"model.n_heads", T_INT, M(n_heads), 1, 256, 0, "attention heads"},
    {"model.d_head", T_INT, M(d_head), 1, 512, 0, "size of each head"},
    {"model.attn_layers", T_ATTN, M(attn), 1, MAX_LAYERS, attention_names, "attention kind of each layer: lsh, local, full"},
    {"model.n_hashes", T_INT, M(n_hashes), 1, MAX_HASHES, 0, "LSH hashing rounds"},
    {"model.n_buckets", T_BUCKETS, M(buckets), 0, 1 << 20, 0, "LSH buckets: even int, [a, b] factorised, or 0 for HF's default"},
    {"model.lsh_chunk", T_INT, M(lsh_chunk), 1, 1 << 20, 0, "LSH chunk length"},
    {"model.lsh_chunks_before", T_INT, M(lsh_before), 0, 16, 0, "LSH chunks each chunk also sees before it"},
    {"model.lsh_chunks_after", T_INT, M(lsh_after), 0, 16, 0, "LSH chunks each chunk also sees after it"},
    {"model.local_chunk", T_INT, M(local_chunk), 1, 1 << 20, 0, "local attention chunk length"},
    {"model.local_chunks_before", T_INT, M(local_before), 0, 16, 0, "local chunks seen before"},
    {"model.local_chunks_after", T_INT, M(local_after), 0, 16, 0, "local chunks seen after"},
    {"model.axial_shape", T_PAIR, M(axial_shape), 1, 1 << 24, 0, "axial position factors [A0, A1]; A0*A1 >= seq_len (left out: [2^(p/2), ceil(seq_len / 2^(p/2))], p = floor(log2 seq_len))"},
    {"model.axial_dims", T_PAIR, M(axial_dims), 1, 65536, 0, "axial embedding sizes [d0, d1]; d0+d1 = d_model (left out: [d_model/4 (at least 1), the rest])"},
    {"model.activation", T_ENUM, M(act), 0, 0, ACTS, "feed-forward activation: gelu (erf) or relu"},
    {"model.causal", T_BOOL, M(causal), 0, 1, 0, "causal masks (HF is_decoder)"},
    {"model.hidden_dropout", T_FLOAT, M(hidden_dropout), 0, 0.99, 0, "dropout on hidden states"},
    {"model.lsh_dropout", T_FLOAT, M(lsh_dropout), 0, 0.99, 0, "dropout on LSH attention probabilities"},
    {"model.local_dropout", T_FLOAT, M(local_dropout), 0, 0.99, 0, "dropout on local attention probabilities"},
    {"model.layer_norm_eps", T_FLOAT, M(ln_eps), 1e-30, 1, 0, "LayerNorm epsilon (HF 1e-12)"},
    {"model.init_std", T_FLOAT, M(init_std), 0, 10, 0, "std of initial weights (HF initializer_range)"},
    {"model.axial_init_std", T_FLOAT, M(axial_std), 0, 10, 0, "std of the axial position tables at initialisation (HF axial_norm_std: 1.0)"},
    {"model.ffn_chunk", T_INT, M(ffn_chunk), 0, 1 << 24, 0, "positions per feed-forward chunk (0: 1024 in fp32, 4096 in bf16)"},
    {"model.head_chunk", T_INT, M(head_chunk), 0, 1 << 24, 0, "positions per LM-head chunk (0: 1024 in fp32, 4096 in bf16)"},
    {"model.head", T_ENUM, M(head), 0, 0, head_names, "on top of the layers: lm (a language-model head) or classifier (HF ReformerForSequenceClassification's head: one class per sequence)"},
    {"model.classes", T_INT, M(classes), 0, 65536, 0, "classifier: the classes (HF num_labels; 2 or more); 0 with the LM head"},
    {"model.pooling", T_ENUM, M(pooling), 0, 0, pooling_names, "classifier: the row it reads: first (the first position, HF's), mean (the mean over the real positions) or ends (the mean of the first and the last real position)"},
    {"model.hash_seed", T_I64, M(hash_seed), -1, 9.0e15, 0, "fixed LSH rotations for every layer and step; -1: fresh"},
    {"data.kind", T_ENUM, D(kind), 0, 0, KINDS, "copy (synthetic duplication), enwik8, imagenet64, listops (LRA; model.head classifier)"},
    {"data.path", T_STR, D(path), 0, 0, 0, "enwik8: enwik8.zip, a gzip or the raw file; imagenet64: the training .zip/.npz/.tar of PNGs, or a directory of them; listops: the directory of basic_{train,val,test}.tsv"},
    {"data.valid_path", T_STR, D(valid_path), 0, 0, 0, "imagenet64: the validation archive (Imagenet64_val_npz.zip or valid_64x64.tar), or a directory"},
    {"data.shuffle_images", T_INT, D(shuffle_images), 1, 1 << 20, 0, "imagenet64: images per shuffled block (memory: 12 KB each)"},
    {"data.pixel_order", T_ENUM, D(pixel_order), 0, 0, PIXEL_ORDERS, "imagenet64: rgb (pixel by pixel, R G B) or planar (as stored)"},
    {"data.token_offset", T_INT, D(token_offset), 0, 65536, 0, "token = byte + offset (HuggingFace's enwik8 models: 2)"},
    {"data.seq_len", T_INT, D(seq_len), 2, 1 << 24, 0, "tokens per sequence (listops: the longest; shorter ones are padded per batch)"},
    {"train.batch", T_INT, R(batch), 1, 65536, 0, "sequences per step"},
    {"train.steps", T_I64, R(steps), 1, 1e12, 0, "optimizer steps"},
    {"train.optimizer", T_ENUM, O(optimizer), 0, 0, optimizer_names, "adam, or adafactor (factored second moments: state of rows + columns per matrix)"},
    {"train.lr", T_FLOAT, O(lr), 0, 10, 0, "peak learning rate (adafactor: relative to each parameter's RMS)"},
    {"train.warmup", T_I64, O(warmup), 0, 1e12, 0, "linear warm-up steps"},
    {"train.schedule", T_ENUM, O(schedule), 0, 0, SCHEDULES, "after warm-up: constant, rsqrt or cosine"},
    {"train.beta1", T_FLOAT, O(beta1), 0, 0.999999, 0, "Adam beta1"},
    {"train.beta2", T_FLOAT, O(beta2), 0, 0.999999, 0, "Adam beta2"},
    {"train.eps", T_FLOAT, O(eps), 0, 1, 0, "Adam epsilon"},
    {"train.weight_decay", T_FLOAT, O(weight_decay), 0, 1, 0, "decoupled weight decay"},
    {"train.clip", T_FLOAT, O(clip), 0, 1e9, 0, "global gradient-norm clip; 0: off"},
    {"train.eval_every", T_INT, R(eval_every), 0, 1 << 30, 0, "steps between validation runs; 0: never"},
    {"train.save_every", T_INT, R(save_every), 0, 1 << 30, 0, "steps between checkpoints; 0: only at the end"},
    {"train.log_every", T_INT, R(log_every), 1, 1 << 30, 0, "steps between log lines"},
    {"train.seed", T_I64, R(seed), 0, 9.0e15, 0, "seed of initialisation, data and dropout"},
    {"train.threads", T_INT, R(threads), 0, 1024, 0, "threads per process; 0: this machine's cores / the processes mpirun started on it"},
    {"train.shard_optimizer", T_BOOL, R(shard_optimizer), 0, 1, 0, "under mpirun, each rank keeps 1/N of the optimizer state (ZeRO-1); false: every rank all of it"},
    {"train.eval_tokens", T_I64, R(eval_tokens), 0, 1e15, 0, "tokens per validation during training; 0: the whole split"},
    {"train.precision", T_ENUM, R(precision), 0, 0, precision_names, "products of the dense layers: fp32, or bf16 (bfloat16 operands, fp32 sums; a build with oneDNN on a CPU with bf16 instructions)"},
    {"train.objective", T_ENUM, R(objective), 0, 0, objective_names, "the LM head's labels: lm (the next token; model.causal true) or mlm (masked tokens, BERT's 80/10/10; model.causal false)"},
    {"train.mask_rate", T_FLOAT, R(mask_rate), 0.0001, 1, 0, "mlm: the share of positions masked and scored"},
    {"train.mask_id", T_INT, R(mask_id), -1, 1 << 20, 0, "mlm: the token a masked position reads; -1: model.vocab - 1"},
    {"train.memory_mb", T_MIB, R(memory_mb), 0, 1e9, 0, "MiB the top layers may keep of their forward's activations so that their backward skips the recompute (a quarter of their FLOPs; about 12 KB a token and layer for B6); \"auto\": half of the memory free at the start, shared by this machine's processes; 0: every layer recomputes (reversible: least memory)"},
};
#define N_KEYS (sizeof(KEYS) / sizeof(KEYS[0]))
_Static_assert(N_KEYS <= CONFIG_MAX_KEYS, "Config.given is too small for the key table");

void config_default(Config *c) {
    memset(c, 0, sizeof(*c));
    reformer_config_default(&c->model);
    c->model.n_layers = 1;
    optim_config_default(&c->opt);
    c->data.kind = DATA_COPY;
    c->data.seq_len = 4096;
    c->data.shuffle_images = 1024;
    c->data.pixel_order = PIXELS_RGB;
    c->train.batch = 1;
    c->train.steps = 1000;
    c->train.eval_every = 200;
    c->train.save_every = 500;
    c->train.log_every = 10;
    c->train.seed = 1;
    c->train.shard_optimizer = 1;
    c->train.mask_rate = 0.15f;
    c->train.mask_id = -1;
}

int config_model_length(const Config *c) { return (int)plan_padded_length(&c->model, c->data.seq_len); }

int config_mask_id(const Config *c) { return c->train.mask_id >= 0 ? c->train.mask_id : c->model.vocab - 1; }

// The head and objective against the model and the data. Returns 0 or -1 with err.
static int validate_task(const Config *c, char *err, size_t cap) {
    const ReformerConfig *m = &c->model;
    if (m->head == HEAD_CLASSIFIER) {
        if (m->classes < 2) return set_error(err, cap, "model.classes: required (2 or more) with model.head \"classifier\"");
        if (c->data.kind != DATA_LISTOPS)
            return set_error(err, cap, "model.head: \"classifier\" needs data with classes (data.kind \"listops\")");
        if (c->train.objective == OBJECTIVE_MASKED)
            return set_error(err, cap, "train.objective: \"mlm\" is an LM head's; the classifier learns classes");
        if (m->classes < LISTOPS_CLASSES)
            return set_error(err, cap, "model.classes: %d; ListOps has %d", m->classes, LISTOPS_CLASSES);
        if (m->vocab < LISTOPS_VOCAB)
            return set_error(err, cap, "model.vocab: %d; ListOps has %d tokens", m->vocab, LISTOPS_VOCAB);
        return 0;
    }
    if (c->data.kind == DATA_LISTOPS)
        return set_error(err, cap, "data.kind: listops is classification: model.head \"classifier\" and model.classes 10");
    if (c->train.objective == OBJECTIVE_NEXT && !m->causal) return set_error(err, cap, "%s", CONFIG_NOT_CAUSAL);
    if (c->train.objective == OBJECTIVE_MASKED && m->causal)
        return set_error(err, cap, "train.objective: \"mlm\" predicts masked tokens from both sides: set model.causal false");
    if (config_mask_id(c) >= m->vocab)
        return set_error(err, cap, "train.mask_id: %d is outside model.vocab %d", config_mask_id(c), m->vocab);
    return 0;
}

static int edit_distance(const char *a, const char *b) {
    int n = (int)strlen(b), row[128];
    if (n > 127) return 99;
    for (int j = 0; j <= n; j++) row[j] = j;
    for (int i = 1; a[i - 1]; i++) {
        int prev = row[0];
        row[0] = i;
        for (int j = 1; j <= n; j++) {
            int cur = row[j];
            int sub = prev + (a[i - 1] != b[j - 1]);
            row[j] = imin(imin(row[j] + 1, row[j - 1] + 1), sub);
            prev = cur;
        }
    }
    return row[n];
}

static const Key *find_key(const char *name) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].key, name)) return &KEYS[i];
    return NULL;
}

static const char *nearest_key(const char *name) {
    const char *best = KEYS[0].key;
    int bd = 1 << 30;
    for (size_t i = 0; i < N_KEYS; i++) {
        int d = edit_distance(name, KEYS[i].key);
        if (d < bd) { bd = d; best = KEYS[i].key; }
    }
    return best;
}

static int whole_number(const cJSON *v) { return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble); }

static int read_int_in(const cJSON *v, const Key *k, const char *name, double *out, char *err, size_t cap) {
    if (!whole_number(v)) return set_error(err, cap, "%s: expected an integer", name);
    if (v->valuedouble < k->min || v->valuedouble > k->max)
        return set_error(err, cap, "%s: %.17g is out of range [%.17g, %.17g]", name, v->valuedouble, k->min, k->max);
    *out = v->valuedouble;
    return 0;
}

static int choice_of(const char *s, const char *const *choices) {
    for (int i = 0; choices[i]; i++)
        if (!strcmp(s, choices[i])) return i;
    return -1;
}

// Sets key k from v; messages call the key `name` (ours, or a foreign file's name for it).
static int set_value(Config *c, const Key *k, const char *name, const cJSON *v, char *err, size_t cap) {
    char *field = (char *)c + k->offset;
    double x = 0;
    switch (k->type) {
    case T_INT:
        if (read_int_in(v, k, name, &x, err, cap)) return -1;
        *(int *)field = (int)x;
        return 0;
    case T_I64:
        if (read_int_in(v, k, name, &x, err, cap)) return -1;
        *(long long *)field = (long long)x;
        return 0;
    case T_MIB:
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "auto")) {
            *(long long *)field = CONFIG_MIB_AUTO;
            return 0;
        }
        if (!whole_number(v)) return set_error(err, cap, "%s: expected an integer (MiB) or \"auto\"", name);
        if (read_int_in(v, k, name, &x, err, cap)) return -1;
        *(long long *)field = (long long)x;
        return 0;
    case T_FLOAT:
        if (!cJSON_IsNumber(v)) return set_error(err, cap, "%s: expected a number", name);
        if (v->valuedouble < k->min || v->valuedouble > k->max)
            return set_error(err, cap, "%s: %g is out of range [%g, %g]", name, v->valuedouble, k->min, k->max);
        *(float *)field = (float)v->valuedouble;
        return 0;
    case T_BOOL:
        if (!cJSON_IsBool(v)) return set_error(err, cap, "%s: expected true or false", name);
        *(int *)field = cJSON_IsTrue(v);
        return 0;
    case T_ENUM: {
        int i = cJSON_IsString(v) ? choice_of(v->valuestring, k->choices) : -2;
        if (i == -2) return set_error(err, cap, "%s: expected a string", name);
        if (i < 0) return set_error(err, cap, "%s: '%s' is not one of the allowed values (see --help-config)", name, v->valuestring);
        *(int *)field = i;
        return 0;
    }
    case T_STR:
        if (!cJSON_IsString(v)) return set_error(err, cap, "%s: expected a string", name);
        if (strlen(v->valuestring) >= DATA_PATH_MAX) return set_error(err, cap, "%s: longer than %d bytes", name, DATA_PATH_MAX - 1);
        strcpy(field, v->valuestring);
        return 0;
    case T_ATTN: {
        int n = cJSON_GetArraySize(v);
        if (!cJSON_IsArray(v) || n < 1) return set_error(err, cap, "%s: expected a non-empty list of \"lsh\", \"local\" or \"full\"", name);
        if (n > MAX_LAYERS) return set_error(err, cap, "%s: %d layers, at most %d", name, n, MAX_LAYERS);
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(v, i);
            int kind = cJSON_IsString(e) ? choice_of(e->valuestring, attention_names) : -1;
            if (kind < 0) return set_error(err, cap, "%s[%d]: expected \"lsh\", \"local\" or \"full\"", name, i);
            c->model.attn[i] = kind;
        }
        c->model.n_layers = n;
        return 0;
    }
    case T_PAIR: {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2) return set_error(err, cap, "%s: expected a list of two integers", name);
        for (int i = 0; i < 2; i++) {
            if (read_int_in(cJSON_GetArrayItem(v, i), k, name, &x, err, cap)) return -1;
            ((int *)field)[i] = (int)x;
        }
        return 0;
    }
    case T_BUCKETS: {
        int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
        if (n < 1 || n > 2) return set_error(err, cap, "%s: expected an integer or a list of two", name);
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, i) : v;
            if (read_int_in(e, k, name, &x, err, cap)) return -1;
            if (x == 0 && n == 1) { c->model.buckets.n_factors = 0; return 0; }
            if ((int)x < 2 || (int)x % 2) return set_error(err, cap, "%s: %d buckets; each factor must be even and >= 2", name, (int)x);
            c->model.buckets.factor[i] = (int)x;
        }
        c->model.buckets.n_factors = n;
        return 0;
    }
    }
    return set_error(err, cap, "%s: unhandled type", name);
}

// Positions a model may have: beyond this, position tables and activations stop making
// sense on one machine (B6 at 2^21 tokens needs about 20 GB).
#define MAX_POSITIONS (1LL << 26)

int config_validate_model(const ReformerConfig *m, int seq_len, char *err, size_t cap) {
    if (m->axial_dims[0] + m->axial_dims[1] != m->d_model)
        return set_error(err, cap, "model.axial_dims: %d + %d must equal model.d_model %d", m->axial_dims[0], m->axial_dims[1], m->d_model);
    long long positions = (long long)m->axial_shape[0] * m->axial_shape[1];
    if (positions > MAX_POSITIONS)
        return set_error(err, cap, "model.axial_shape: %d x %d positions is more than %lld", m->axial_shape[0], m->axial_shape[1], MAX_POSITIONS);
    if (positions < seq_len)
        return set_error(err, cap, "model.axial_shape: %d x %d positions is fewer than data.seq_len %d", m->axial_shape[0], m->axial_shape[1], seq_len);
    int has_lsh = 0;
    for (int l = 0; l < m->n_layers; l++) has_lsh |= m->attn[l] == ATTN_LSH;
    if (has_lsh) {
        // the bucket count in use (HF's default resolves from the length) fixes how many
        // rotation columns each position is hashed with
        LshBuckets b = plan_buckets(m, seq_len);
        long long nb = 1, cols = plan_rotation_cols(m, seq_len) / m->n_hashes;
        for (int i = 0; i < b.n_factors; i++) nb *= b.factor[i];
        if (nb > (1 << 24)) return set_error(err, cap, "model.n_buckets: %lld buckets is too many", nb);
        if (cols * m->n_hashes > LSH_MAX_ROTATION_COLS)
            return set_error(err, cap, "model.n_buckets: %lld rotation columns per hash x model.n_hashes %d is more than %d",
                             cols, m->n_hashes, LSH_MAX_ROTATION_COLS);
    }
    // sizes stay far from overflow in every size_t product of the model
    double params = (double)m->vocab * m->d_model * 2 + (double)m->n_layers *
                    ((double)m->d_model * m->n_heads * m->d_head * 4 + (double)m->d_model * m->d_ff * 2);
    if (params > 1e11)
        return set_error(err, cap, "model: %.3g parameters is more than this program trains (1e11)", params);
    return 0;
}

int config_validate(const Config *c, char *err, size_t cap) {
    const ReformerConfig *m = &c->model;
    if (config_validate_model(m, c->data.seq_len, err, cap)) return -1;
    if (validate_task(c, err, cap)) return -1;
    // a length the chunks do not divide runs padded at the end (config_model_length)
    int L = c->data.seq_len, P = config_model_length(c);
    long long positions = (long long)m->axial_shape[0] * m->axial_shape[1];
    if (P > positions)
        return set_error(err, cap, "model.axial_shape: %d x %d positions is fewer than the %d that data.seq_len %d pads to "
                                   "(a multiple of the chunk lengths' least common multiple %lld)",
                         m->axial_shape[0], m->axial_shape[1], P, L, plan_chunk_lcm(m));
    if ((double)c->train.batch * L > (double)(1LL << 32))
        return set_error(err, cap, "train.batch: %d sequences of %d tokens is more than 2^32 tokens a step", c->train.batch, L);
    if (c->data.kind == DATA_COPY && c->data.path[0])
        return set_error(err, cap, "data.path: the copy task makes its own data; only for enwik8 and imagenet64");
    if (c->data.kind == DATA_IMAGENET64 && c->data.valid_path[0] == '\0')
        return set_error(err, cap, "data.valid_path: required for data.kind 'imagenet64' (e.g. Imagenet64_val_npz.zip)");
    if (c->data.kind != DATA_IMAGENET64 && c->data.valid_path[0])
        return set_error(err, cap, "data.valid_path: only for imagenet64 (the other kinds split one source)");
    if (c->data.kind == DATA_IMAGENET64 && c->data.seq_len != IMAGE_BYTES)
        return set_error(err, cap, "data.seq_len: %d; imagenet64 sequences are one 64x64x3 image, %d", c->data.seq_len, IMAGE_BYTES);
    if (c->data.kind == DATA_COPY && m->vocab < 3)
        return set_error(err, cap, "model.vocab: the copy task needs at least 3 symbols");
    if (c->data.kind == DATA_LISTOPS && c->data.token_offset)
        return set_error(err, cap, "data.token_offset: ListOps has its own ids; only 0");
    if (c->data.kind != DATA_COPY && c->data.kind != DATA_LISTOPS && m->vocab < 256 + c->data.token_offset)
        return set_error(err, cap, "model.vocab: %d is too small for bytes (256) + data.token_offset %d", m->vocab, c->data.token_offset);
    if (c->data.kind == DATA_COPY && c->data.token_offset)
        return set_error(err, cap, "data.token_offset: the copy task makes its own tokens; only 0");
    return 0;
}

static const char *duplicate_name(const cJSON *obj) {
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && !strcmp(a->string, b->string)) return a->string;
    return NULL;
}

// Strict JSON: an object, nothing after it, and no name in it twice (cJSON keeps both and
// we would read the first one silently). NULL with err otherwise.
static cJSON *parse_strict(const char *json, const char *where, char *err, size_t cap) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        const char *at = end ? end : cJSON_GetErrorPtr();
        int line = 1;
        for (const char *p = json; at && p < at && *p; p++) line += *p == '\n';
        set_error(err, cap, "%s: invalid JSON near line %d%s", where, line,
                  at && *at && cJSON_GetErrorPtr() == NULL ? " (text after the end)" : "");
        return NULL;
    }
    const char *dup = cJSON_IsObject(root) ? duplicate_name(root) : NULL;
    if (!cJSON_IsObject(root)) set_error(err, cap, "%s: the top level must be an object", where);
    else if (dup) set_error(err, cap, "%s: '%s' appears twice", where, dup);
    if (!cJSON_IsObject(root) || dup) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

// The axial position tables a config leaves out, chosen from its length and width (plan.h).
static void fill_axial(Config *c) {
    ReformerConfig *m = &c->model;
    if (!config_given(c, "model.axial_shape") && c->data.seq_len >= 1)
        plan_axial_shape(m->axial_shape, plan_padded_length(m, c->data.seq_len));
    if (!config_given(c, "model.axial_dims") && m->d_model >= 2) plan_axial_dims(m->axial_dims, m->d_model);
}

// check: run the cross-key checks (config_validate) after reading every key.
static int parse_config(const char *json, const char *where, Config *c, int check, char *err, size_t cap) {
    cJSON *root = parse_strict(json, where, err, cap);
    if (!root) return -1;
    int rc = 0;
    const char *dup;
    for (cJSON *sec = root->child; sec && !rc; sec = sec->next) {
        if (strcmp(sec->string, "model") && strcmp(sec->string, "data") && strcmp(sec->string, "train")) {
            rc = set_error(err, cap, "%s: unknown section '%s' (sections: model, data, train)", where, sec->string);
            break;
        }
        if (!cJSON_IsObject(sec)) { rc = set_error(err, cap, "%s: expected an object", sec->string); break; }
        if ((dup = duplicate_name(sec))) { rc = set_error(err, cap, "%s: %s.%s appears twice", where, sec->string, dup); break; }
        for (cJSON *v = sec->child; v && !rc; v = v->next) {
            char name[160];
            snprintf(name, sizeof(name), "%s.%s", sec->string, v->string);
            const Key *k = find_key(name);
            if (!k) rc = set_error(err, cap, "%s: unknown key '%s' (did you mean '%s'?)", where, name, nearest_key(name));
            else rc = set_value(c, k, name, v, err, cap);
            if (!rc) c->given[k - KEYS] = 1;
        }
    }
    if (!rc) fill_axial(c);
    if (!rc && check) rc = config_validate(c, err, cap);
    cJSON_Delete(root);
    return rc;
}

int config_parse(const char *json, const char *where, Config *c, char *err, size_t cap) {
    return parse_config(json, where, c, 1, err, cap);
}

// err holds a message naming our keys; each becomes the foreign name it was read from.
static void rename_keys(char *err, size_t cap, const KeyAlias *map) {
    char out[1024];
    size_t o = 0;
    for (const char *p = err; *p && o + 1 < sizeof(out);) {
        const KeyAlias *hit = NULL;
        for (const KeyAlias *a = map; a->key && !hit; a++) {
            size_t n = strlen(a->key);
            char next = p[n];
            if (!strncmp(p, a->key, n) && !(next == '_' || (next >= 'a' && next <= 'z'))) hit = a;
        }
        if (hit) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", hit->foreign);
            if (o >= sizeof(out)) o = sizeof(out) - 1;
            p += strlen(hit->key);
        } else {
            out[o++] = *p++;
        }
    }
    if (o >= cap) o = cap - 1;
    memcpy(err, out, o);
    err[o] = '\0';
}

int config_parse_mapped(const char *json, const char *where, const KeyAlias *map, Config *c, int *seq_len,
                        char *err, size_t cap) {
    cJSON *root = parse_strict(json, where, err, cap);
    if (!root) return -1;
    int rc = 0;
    char inner[768];
    for (const KeyAlias *a = map; !rc && a->key; a++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, a->foreign);
        const Key *k = find_key(a->key);
        CHECK(k != NULL, "alias of unknown key %s", a->key);
        if (!v || cJSON_IsNull(v)) {
            if (a->required) rc = set_error(err, cap, "%s: missing '%s'", where, a->foreign);
            continue;
        }
        if (set_value(c, k, a->foreign, v, inner, sizeof(inner))) rc = set_error(err, cap, "%s: %s", where, inner);
        else c->given[k - KEYS] = 1;
    }
    // the longest sequence is the number of positions
    *seq_len = (int)fmin((double)c->model.axial_shape[0] * c->model.axial_shape[1], (double)MAX_POSITIONS);
    if (!rc && config_validate_model(&c->model, *seq_len, inner, sizeof(inner))) {
        rename_keys(inner, sizeof(inner), map);
        rc = set_error(err, cap, "%s: %s", where, inner);
    }
    cJSON_Delete(root);
    return rc;
}

const char *config_given_in(const Config *c, const char *section, const char *const *except) {
    size_t n = strlen(section);
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *key = KEYS[i].key;
        if (!c->given[i] || strncmp(key, section, n) || key[n] != '.') continue;
        int allowed = 0;
        for (int j = 0; except && except[j]; j++) allowed |= !strcmp(key + n + 1, except[j]);
        if (!allowed) return key;
    }
    return NULL;
}

int config_given(const Config *c, const char *key) {
    const Key *k = find_key(key);
    return k && c->given[k - KEYS];
}

static int load_config(const char *path, Config *c, int check, char *err, size_t cap) {
    char *text;
    size_t len;
    if (files_read_all(path, 1 << 24, &text, &len, err, cap)) return -1;
    if (len == 0) {
        free(text);
        return set_error(err, cap, "%s: empty config", path);
    }
    if (strlen(text) != len) {
        free(text);
        return set_error(err, cap, "%s: holds a NUL byte; a config is JSON text", path);
    }
    int rc = parse_config(text, path, c, check, err, cap);
    free(text);
    return rc;
}

int config_load(const char *path, Config *c, char *err, size_t cap) { return load_config(path, c, 1, err, cap); }

int config_load_keys(const char *path, Config *c, char *err, size_t cap) { return load_config(path, c, 0, err, cap); }

int config_load_model(const char *path, ReformerConfig *model, char *err, size_t cap) {
    Config c;
    config_default(&c);
    if (config_load(path, &c, err, cap)) return -1;
    *model = c.model;
    return 0;
}

// "model" of "model.d_model".
static void key_section(const char *key, char *sec, size_t cap) {
    const char *dot = strchr(key, '.');
    snprintf(sec, cap, "%.*s", (int)(dot ? (size_t)(dot - key) : strlen(key)), key);
}

void config_float_text(float v, char *text, size_t cap) {
    for (int digits = 1; digits <= 9; digits++) {  // 9 significant digits always read back
        snprintf(text, cap, "%.*g", digits, (double)v);
        if (strtof(text, NULL) == v) break;
    }
}

int config_key_is_float(const char *key) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].key, key)) return KEYS[i].type == T_FLOAT;
    return 0;
}

char *config_to_json(const Config *c) {
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; i < N_KEYS; i++) {
        const Key *k = &KEYS[i];
        char sec[16];
        key_section(k->key, sec, sizeof(sec));
        cJSON *s = cJSON_GetObjectItemCaseSensitive(root, sec);
        if (!s) s = cJSON_AddObjectToObject(root, sec);
        const char *name = strchr(k->key, '.') + 1;
        const char *field = (const char *)c + k->offset;
        switch (k->type) {
        case T_INT: cJSON_AddNumberToObject(s, name, *(const int *)field); break;
        case T_I64: cJSON_AddNumberToObject(s, name, (double)*(const long long *)field); break;
        case T_MIB:
            if (*(const long long *)field == CONFIG_MIB_AUTO) cJSON_AddStringToObject(s, name, "auto");
            else cJSON_AddNumberToObject(s, name, (double)*(const long long *)field);
            break;
        case T_FLOAT: {
            char text[32];
            config_float_text(*(const float *)field, text, sizeof(text));
            cJSON_AddRawToObject(s, name, text);
            break;
        }
        case T_BOOL: cJSON_AddBoolToObject(s, name, *(const int *)field); break;
        case T_ENUM: cJSON_AddStringToObject(s, name, k->choices[*(const int *)field]); break;
        case T_STR: cJSON_AddStringToObject(s, name, field); break;
        case T_ATTN: {
            cJSON *a = cJSON_AddArrayToObject(s, name);
            for (int l = 0; l < c->model.n_layers; l++) cJSON_AddItemToArray(a, cJSON_CreateString(attention_names[c->model.attn[l]]));
            break;
        }
        case T_PAIR: {
            cJSON *a = cJSON_AddArrayToObject(s, name);
            for (int j = 0; j < 2; j++) cJSON_AddItemToArray(a, cJSON_CreateNumber(((const int *)field)[j]));
            break;
        }
        case T_BUCKETS:
            if (c->model.buckets.n_factors == 0) cJSON_AddNumberToObject(s, name, 0);
            else if (c->model.buckets.n_factors == 1) cJSON_AddNumberToObject(s, name, c->model.buckets.factor[0]);
            else {
                cJSON *a = cJSON_AddArrayToObject(s, name);
                for (int j = 0; j < 2; j++) cJSON_AddItemToArray(a, cJSON_CreateNumber(c->model.buckets.factor[j]));
            }
            break;
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

const char *config_first_difference(const Config *a, const Config *b, const char *sec, char *out, size_t cap) {
    char *ja = config_to_json(a), *jb = config_to_json(b);
    cJSON *ra = cJSON_Parse(ja), *rb = cJSON_Parse(jb);
    free(ja);
    free(jb);
    const char *found = NULL;
    cJSON *sa = cJSON_GetObjectItem(ra, sec), *sb = cJSON_GetObjectItem(rb, sec);
    for (cJSON *v = sa ? sa->child : NULL; v && !found; v = v->next)
        if (!cJSON_Compare(v, cJSON_GetObjectItem(sb, v->string), 1)) {
            snprintf(out, cap, "%s.%s", sec, v->string);
            found = out;
        }
    cJSON_Delete(ra);
    cJSON_Delete(rb);
    return found;
}

void config_print_help(FILE *out) {
    Config d;
    config_default(&d);
    char *json = config_to_json(&d);
    cJSON *defaults = cJSON_Parse(json);
    free(json);
    fprintf(out, "Config keys (JSON sections model, data, train):\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const Key *k = &KEYS[i];
        char sec[16];
        key_section(k->key, sec, sizeof(sec));
        cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(defaults, sec), strchr(k->key, '.') + 1);
        char *dv = cJSON_PrintUnformatted(v);
        fprintf(out, "  %-26s %s (default %s)\n", k->key, k->doc, dv);
        free(dv);
    }
    cJSON_Delete(defaults);
}
