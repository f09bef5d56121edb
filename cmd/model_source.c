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
    if (hf_read_config(path, &cfg->model, &max_len, err, cap)) return -1;
    if (hf_read_token_offset(path, &cfg->data.token_offset, err, cap)) return -1;
    cfg->data.kind = cfg->model.vocab >= 256 + cfg->data.token_offset ? DATA_ENWIK8 : DATA_COPY;
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

double source_run_bytes(const ReformerConfig *c, int B, int T, int kept_layers, double opt_floats_per_param,
                        size_t *n_params) {
    return (double)plan_bytes_needed(c, B, T, n_params) + (double)*n_params * 4.0 * opt_floats_per_param +
           (kept_layers ? (double)kept_layers * plan_keep_layer_bytes(c, B, T) : 0.0);
}

int source_check_memory(const ReformerConfig *c, int B, int T, int kept_layers, double opt_floats_per_param,
                        char *err, size_t cap) {
    size_t n_params;
    double need = source_run_bytes(c, B, T, kept_layers, opt_floats_per_param, &n_params);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    if (have > 0 && need > have)
        return set_error(err, cap, "the model (%zu parameters) needs %.1f GB for batches of %d x %d tokens; this machine "
                                   "has %.1f GB", n_params, need / 1e9, B, T, have / 1e9);
    return 0;
}

double source_available_memory(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb >= 0) return (double)kb * 1024.0;
    return (double)sysconf(_SC_AVPHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
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
