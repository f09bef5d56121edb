// hf_model.c: ReformerConfig fields (transformers' configuration_reformer.py) to ours.
#include "hf_model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>

#include "args.h"
#include "config.h"
#include "../data/files.h"
#include "safetensors.h"

// HuggingFace's ReformerConfig names for our keys; the values pass our table's checks.
static const KeyAlias HF_KEYS[] = {
    {"model.vocab", "vocab_size", 1},
    {"model.d_model", "hidden_size", 1},
    {"model.d_ff", "feed_forward_size", 1},
    {"model.n_heads", "num_attention_heads", 1},
    {"model.d_head", "attention_head_size", 1},
    {"model.attn_layers", "attn_layers", 1},
    {"model.axial_shape", "axial_pos_shape", 1},
    {"model.axial_dims", "axial_pos_embds_dim", 1},
    {"model.n_hashes", "num_hashes", 0},
    {"model.n_buckets", "num_buckets", 0},
    {"model.lsh_chunk", "lsh_attn_chunk_length", 0},
    {"model.lsh_chunks_before", "lsh_num_chunks_before", 0},
    {"model.lsh_chunks_after", "lsh_num_chunks_after", 0},
    {"model.local_chunk", "local_attn_chunk_length", 0},
    {"model.local_chunks_before", "local_num_chunks_before", 0},
    {"model.local_chunks_after", "local_num_chunks_after", 0},
    {"model.activation", "hidden_act", 0},
    {"model.causal", "is_decoder", 0},
    {"model.layer_norm_eps", "layer_norm_eps", 0},
    {"model.init_std", "initializer_range", 0},
    {"model.axial_init_std", "axial_norm_std", 0},
    {"model.hash_seed", "hash_seed", 0},
    {"model.hidden_dropout", "hidden_dropout_prob", 0},
    {"model.lsh_dropout", "lsh_attention_probs_dropout_prob", 0},
    {"model.local_dropout", "local_attention_probs_dropout_prob", 0},
    {NULL, NULL, 0},
};

// The HuggingFace classes whose directories we read and write, and what each is here.
typedef struct {
    const char *name;
    int head, objective;
} HfClass;
static const HfClass HF_CLASSES[] = {
    {"ReformerModelWithLMHead", HEAD_LM, OBJECTIVE_NEXT},
    {"ReformerForMaskedLM", HEAD_LM, OBJECTIVE_MASKED},
    {"ReformerForSequenceClassification", HEAD_CLASSIFIER, OBJECTIVE_NEXT},
    {NULL, 0, 0},
};

// The class config.json r names in "architectures" (none named: the LM head's), and for a
// classifier its classes. NULL with err for a class we do not run.
static const HfClass *read_class(const cJSON *r, const char *path, int *classes, char *err, size_t cap) {
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(r, "architectures"), *a;
    const HfClass *found = &HF_CLASSES[0];
    cJSON_ArrayForEach(a, arch) {
        const HfClass *k = HF_CLASSES;
        while (k->name && !(cJSON_IsString(a) && !strcmp(a->valuestring, k->name))) k++;
        if (!k->name) {
            set_error(err, cap, "%s: architectures: %s; reformer runs ReformerModelWithLMHead, ReformerForMaskedLM and "
                                "ReformerForSequenceClassification", path, cJSON_IsString(a) ? a->valuestring : "(not a string)");
            return NULL;
        }
        if (a == arch->child) found = k;
    }
    *classes = 0;
    if (found->head != HEAD_CLASSIFIER) return found;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(r, "num_labels"), *ids = cJSON_GetObjectItemCaseSensitive(r, "id2label");
    const cJSON *problem = cJSON_GetObjectItemCaseSensitive(r, "problem_type");
    *classes = cJSON_IsNumber(n) ? (int)n->valuedouble : cJSON_IsObject(ids) ? cJSON_GetArraySize(ids) : 2;
    if (cJSON_IsString(problem) && strcmp(problem->valuestring, "single_label_classification")) {
        set_error(err, cap, "%s: problem_type: %s; the classifier learns one class per sequence (single_label_classification)",
                  path, problem->valuestring);
        return NULL;
    }
    if (*classes < 2 || *classes > 65536) {
        set_error(err, cap, "%s: num_labels: %d; the classifier takes 2 to 65536 classes (1 is HF's regression)", path,
                  *classes);
        return NULL;
    }
    return found;
}

int hf_read_config(const char *dir, ReformerConfig *c, int *max_len, int *objective, char *err, size_t cap) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    char *text;
    size_t len;
    if (files_read_all(path, 1 << 20, &text, &len, err, cap)) return -1;
    Config cfg;
    config_default(&cfg);
    cfg.model.causal = 0;  // HF's is_decoder defaults to false
    cfg.model.hash_seed = -1;
    cfg.model.axial_std = 1.0f;  // HF's default axial_norm_std
    int rc = strlen(text) != len ? set_error(err, cap, "%s: holds a NUL byte", path)
                                 : config_parse_mapped(text, path, HF_KEYS, &cfg, max_len, err, cap);
    cJSON *r = rc ? NULL : cJSON_Parse(text);
    free(text);
    // our configs read n_buckets 0 as "HF's default"; HF spells that null, and 0 buckets is no
    // bucket count at all
    const cJSON *nb = cJSON_GetObjectItemCaseSensitive(r, "num_buckets");
    if (!rc && cJSON_IsNumber(nb) && nb->valuedouble == 0)
        rc = set_error(err, cap, "%s: num_buckets: 0 buckets; give an even number >= 2, a pair of them, or null for "
                                 "the default", path);
    const cJSON *ax = cJSON_GetObjectItemCaseSensitive(r, "axial_pos_embds");
    if (!rc && ax && !cJSON_IsTrue(ax))
        rc = set_error(err, cap, "%s: axial_pos_embds: only axial position embeddings are supported", path);
    for (int l = 0; !rc && l < cfg.model.n_layers; l++)
        if (cfg.model.attn[l] == ATTN_FULL)
            rc = set_error(err, cap, "%s: attn_layers[%d]: HuggingFace's Reformer has \"lsh\" and \"local\" layers", path, l);
    const HfClass *k = rc ? NULL : read_class(r, path, &cfg.model.classes, err, cap);
    if (!rc && !k) rc = -1;
    if (!rc) {
        cfg.model.head = k->head;
        cfg.model.pooling = POOL_FIRST;  // ReformerClassificationHead reads the first position
    }
    cJSON_Delete(r);
    if (rc) return -1;
    if (objective) *objective = k->objective;
    *c = cfg.model;
    c->hidden_dropout = c->lsh_dropout = c->local_dropout = 0.0f;  // fine-tuning sets its own
    return 0;
}

typedef struct {
    const Model *m;
    char *err;
    size_t cap;
    int bad;
} NameCheck;

// The file may hold lm_head.bias, HF's name for the decoder bias it ties.
static void check_known(void *ctx, const char *name) {
    NameCheck *k = ctx;
    if (k->bad || !strcmp(name, "lm_head.bias")) return;
    for (int i = 0; i < k->m->spec.n_entries; i++)
        if (!strcmp(k->m->w.table[i].name, name)) return;
    set_error(k->err, k->cap, "model.safetensors: unknown tensor '%s'", name);
    k->bad = 1;
}

int hf_load_weights(const char *dir, Model *m, char *err, size_t cap) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    Safetensors st;
    if (safetensors_open(&st, path, err, cap)) return -1;
    NameCheck k = {m, err, cap, 0};
    safetensors_names(&st, check_known, &k);
    int rc = k.bad ? -1 : 0;
    for (int i = 0; !rc && i < m->spec.n_entries; i++) {
        const ParamEntry *e = &m->w.table[i];
        const char *name = e->name;
        int nd;
        long long shape[8];
        int present = safetensors_numel(&st, name, &nd, shape) >= 0;
        if (!present && !strcmp(name, "lm_head.decoder.bias")) {
            name = "lm_head.bias";
            present = safetensors_numel(&st, name, &nd, shape) >= 0;
        }
        // the same number of floats in another shape (a transposed weight) is refused;
        // an absent tensor is named by safetensors_read_f32
        int same = present && nd == e->ndim;
        for (int d = 0; same && d < nd; d++) same = shape[d] == e->shape[d];
        if (present && !same) {
            char want[64] = "", got[64] = "";
            for (int d = 0; d < e->ndim; d++) snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%d", d ? ", " : "", e->shape[d]);
            for (int d = 0; d < nd && d < 4; d++) snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", d ? ", " : "", shape[d]);
            rc = set_error(err, cap, "%s: tensor '%s' is shaped (%s); the model's is (%s)", path, name, got, want);
        }
        if (!rc) rc = safetensors_read_f32(&st, name, m->w.params + e->offset, e->numel, err, cap);
    }
    safetensors_close(&st);
    return rc;
}

// A float as JSON that reads back as a float: transformers 5 validates config fields by
// type and rejects 0 (an int) where it wants 0.0.
static void add_float(cJSON *r, const char *key, float v) {
    char text[64];
    config_float_text(v, text, sizeof(text) - 2);
    if (!strpbrk(text, ".eEn")) strcat(text, ".0");
    cJSON_AddRawToObject(r, key, text);
}

int hf_export(const char *dir, const Model *m, int objective, char *err, size_t cap) {
    const ReformerConfig *c = &m->spec.cfg;
    for (int l = 0; l < c->n_layers; l++)
        if (c->attn[l] == ATTN_FULL) return set_error(err, cap, "layer %d uses full attention, which HuggingFace's Reformer lacks", l);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return set_error(err, cap, "%s: cannot create: %s", dir, strerror(errno));
    if (c->head == HEAD_CLASSIFIER && c->pooling != POOL_FIRST)
        return set_error(err, cap, "model.pooling: %s; HuggingFace's classifier reads the first position", pooling_names[c->pooling]);
    const HfClass *k = HF_CLASSES;
    while (k->name && !(k->head == c->head && (c->head == HEAD_CLASSIFIER || k->objective == objective))) k++;
    cJSON *r = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(k->name));
    if (c->head == HEAD_CLASSIFIER) {  // HF derives num_labels from id2label
        cJSON *ids = cJSON_AddObjectToObject(r, "id2label"), *labels = cJSON_AddObjectToObject(r, "label2id");
        for (int i = 0; i < c->classes; i++) {
            char key[32], name[32];
            snprintf(key, sizeof(key), "%d", i);
            snprintf(name, sizeof(name), "LABEL_%d", i);
            cJSON_AddStringToObject(ids, key, name);
            cJSON_AddNumberToObject(labels, name, i);
        }
        cJSON_AddStringToObject(r, "problem_type", "single_label_classification");
    }
    cJSON_AddStringToObject(r, "model_type", "reformer");
    // every key HF_KEYS maps, from our config's own JSON, under HF's name
    Config cfg;
    config_default(&cfg);
    cfg.model = *c;
    char *ours_text = config_to_json(&cfg);
    cJSON *ours = cJSON_Parse(ours_text);
    free(ours_text);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(ours, "model");
    for (const KeyAlias *a = HF_KEYS; a->key; a++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, a->key + strlen("model."));
        // HF spells "its default" null where our configs write 0 (buckets) or -1 (hash seed)
        int unset = (!strcmp(a->key, "model.n_buckets") && c->buckets.n_factors == 0) ||
                    (!strcmp(a->key, "model.hash_seed") && c->hash_seed < 0);
        if (unset) cJSON_AddNullToObject(r, a->foreign);
        else if (config_key_is_float(a->key)) add_float(r, a->foreign, (float)v->valuedouble);
        else cJSON_AddItemToObject(r, a->foreign, cJSON_Duplicate(v, 1));
    }
    cJSON_Delete(ours);
    cJSON_AddTrueToObject(r, "axial_pos_embds");
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->axial_shape[0] * c->axial_shape[1]);
    cJSON_AddNumberToObject(r, "chunk_size_feed_forward", 0);
    cJSON_AddNumberToObject(r, "chunk_size_lm_head", 0);
    cJSON_AddFalseToObject(r, "tie_word_embeddings");
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    char path[2048];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    int bad = files_write_text(path, text, err, cap);
    free(text);
    if (bad) return -1;
    // tensors under HF's names; the decoder bias is saved as lm_head.bias, as HF saves it
    int n = m->spec.n_entries;
    const char **names = malloc(n * sizeof(char *));
    int *ndims = malloc(n * sizeof(int));
    int (*shapes)[3] = malloc(n * sizeof(*shapes));
    const float **data = malloc(n * sizeof(float *));
    int rc = !names || !ndims || !shapes || !data ? set_error(err, cap, "%s: out of memory", dir) : 0;
    for (int i = 0; !rc && i < n; i++) {
        const ParamEntry *e = &m->w.table[i];
        names[i] = strcmp(e->name, "lm_head.decoder.bias") ? e->name : "lm_head.bias";
        ndims[i] = e->ndim;
        for (int d = 0; d < 3; d++) shapes[i][d] = e->shape[d];
        data[i] = m->w.params + e->offset;
    }
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    if (!rc) rc = safetensors_write_f32(path, n, names, ndims, (const int (*)[3])shapes, data, err, cap);
    free(names);
    free(ndims);
    free(shapes);
    free(data);
    return rc;
}

int hf_load_rotations(const char *path, const Model *m, const float **rotations, float **block, char *err,
                      size_t cap) {
    const ReformerConfig *c = &m->spec.cfg;
    *block = NULL;
    for (int l = 0; l < MAX_LAYERS; l++) rotations[l] = NULL;
    Safetensors st;
    if (safetensors_open(&st, path, err, cap)) return -1;
    long long want[4] = {c->n_heads, c->d_head, c->n_hashes, lsh_rotation_cols(&m->spec.cfg.buckets)};
    size_t per = (size_t)(want[0] * want[1] * want[2] * want[3]);
    int n_lsh = 0;
    for (int l = 0; l < c->n_layers; l++) n_lsh += c->attn[l] == ATTN_LSH;
    float *all = malloc((n_lsh ? n_lsh : 1) * per * sizeof(float));
    int rc = all ? 0 : set_error(err, cap, "%s: out of memory", path);
    for (int l = 0, k = 0; l < c->n_layers && !rc; l++) {
        if (c->attn[l] != ATTN_LSH) continue;
        char name[32];
        snprintf(name, sizeof(name), "rotations.%d", k);
        int nd;
        long long shape[8];
        if (safetensors_numel(&st, name, &nd, shape) < 0) {
            rc = set_error(err, cap, "%s: no tensor '%s' for LSH layer %d", path, name, l);
        } else if (nd != 4 || shape[0] != want[0] || shape[1] != want[1] || shape[2] != want[2] || shape[3] != want[3]) {
            rc = set_error(err, cap, "%s: '%s' must be shaped (%lld, %lld, %lld, %lld): heads, head size, hashes, buckets/2",
                           path, name, want[0], want[1], want[2], want[3]);
        } else if (!(rc = safetensors_read_f32(&st, name, all + k * per, per, err, cap))) {
            rotations[l] = all + k * per;
            for (size_t i = 0; i < per && !rc; i++)  // a NaN rotation hashes nothing: every argmax ties
                if (!isfinite(all[k * per + i]))
                    rc = set_error(err, cap, "%s: '%s' holds %g at element %zu; rotations must be finite", path, name,
                                   all[k * per + i], i);
        }
        k++;
    }
    safetensors_close(&st);
    if (rc) {
        free(all);
        for (int l = 0; l < c->n_layers; l++) rotations[l] = NULL;
        return -1;
    }
    *block = all;
    return 0;
}

// reformer.json beside config.json: what HF's config cannot say. Today: the token offset.
int hf_read_token_offset(const char *dir, int *offset, char *err, size_t cap) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/reformer.json", dir);
    *offset = 0;
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) return 0;  // absent: offset 0
    char *text;
    if (files_read_all(path, 1 << 16, &text, NULL, err, cap)) return -1;
    cJSON *r = cJSON_ParseWithOpts(text, NULL, 1);
    free(text);
    const cJSON *o = r ? cJSON_GetObjectItemCaseSensitive(r, "token_offset") : NULL;
    int rc = 0;
    if (!r || !cJSON_IsObject(r)) rc = set_error(err, cap, "%s: not a JSON object", path);
    else if (o && (!cJSON_IsNumber(o) || o->valuedouble < 0 || o->valuedouble > 65536 || o->valuedouble != (int)o->valuedouble))
        rc = set_error(err, cap, "%s: token_offset: expected an integer in [0, 65536]", path);
    else if (o) *offset = (int)o->valuedouble;
    cJSON_Delete(r);
    return rc;
}

int hf_write_token_offset(const char *dir, int offset, char *err, size_t cap) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/reformer.json", dir);
    char text[64];
    snprintf(text, sizeof(text), "{\"token_offset\": %d}\n", offset);
    return files_write_text(path, text, err, cap);
}
