// model_source.c: one way for every command to open --ckpt.
#include "model_source.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf_model.h"
#include "../core/common.h"

int source_read_config(const char *path, Config *cfg, int *is_hf, char *err, size_t cap) {
    struct stat sb;
    *is_hf = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (!*is_hf) return checkpoint_read_config(path, cfg, err, cap);
    config_default(cfg);
    int max_len;
    if (hf_read_config(path, &cfg->model, &max_len, &cfg->train.objective, err, cap)) return -1;
    int next = cfg->model.head == HEAD_LM && cfg->train.objective == OBJECTIVE_NEXT;
    if (next && !cfg->model.causal) return set_error(err, cap, "%s/config.json: %s", path, CONFIG_NOT_CAUSAL);
    if (cfg->train.objective == OBJECTIVE_MASKED && cfg->model.causal)
        return set_error(err, cap, "%s/config.json: is_decoder: true; ReformerForMaskedLM is bidirectional", path);
    if (hf_read_token_offset(path, &cfg->data.token_offset, err, cap)) return -1;
    cfg->data.kind = cfg->model.head == HEAD_CLASSIFIER                     ? DATA_LISTOPS
                     : cfg->model.vocab >= 256 + cfg->data.token_offset ? DATA_ENWIK8
                                                                         : DATA_COPY;
    cfg->data.seq_len = max_len;
    return 0;
}

int source_load(const char *path, int is_hf, Model *m, TrainState *st, char *err, size_t cap) {
    if (is_hf) {
        if (st) memset(st, 0, sizeof(*st));
        return hf_load_weights(path, m, err, cap);
    }
    TrainState ignored;
    return checkpoint_load(path, m, NULL, st ? st : &ignored, err, cap);
}




const char *const run_attention_names[] = {"lsh", "chunks", "full", NULL};

int source_override_attention(ReformerConfig *c, int kind, int hashes, int T, char *err, size_t cap) {
    if (hashes) c->n_hashes = hashes;
    for (int l = 0; kind >= 0 && l < c->n_layers; l++) {
        if (c->attn[l] == ATTN_LOCAL && kind == RUN_LSH)
            return set_error(err, cap, "--attn lsh: layer %d is local attention (separate query and key weights), "
                                       "which cannot hash", l);
        if (c->attn[l] == ATTN_LOCAL && kind == RUN_FULL) c->local_chunk = imax(c->local_chunk, T);
        if (c->attn[l] != ATTN_LOCAL) c->attn[l] = kind == RUN_FULL ? ATTN_FULL : ATTN_LSH;
    }
    if (kind == RUN_CHUNKS) {  // one bucket, one round: chunks of positions in order
        c->buckets = (LshBuckets){1, {1, 0}};
        c->n_hashes = 1;
    }
    // --hashes 16 may be more rotation columns than the config allows
    return kind == RUN_CHUNKS ? 0 : config_validate_model(c, T, err, cap);
}
