// eval.c: `reformer eval [CONFIG.json] --ckpt CKPT`: loss, bits and accuracy of a split.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>
#include <sys/stat.h>

#include "../core/common.h"
#include "../core/model.h"
#include "../core/decode.h"
#include "args.h"
#include "machine.h"
#include "checkpoint.h"
#include "commands.h"
#include "evaluate.h"
#include "hf_model.h"
#include "model_source.h"
#include "progress.h"
#include "../data/files.h"
#include "../data/mlm.h"


// A HuggingFace model directory on one sequence: the bytes of FILE (plus the token offset:
// the flag, else DIR/reformer.json, else 0; HF's enwik8 models use 2), the loss HF computes
// with labels = input_ids (ReformerModelWithLMHead: the next token; ReformerForMaskedLM: each
// position's own, every position unmasked at mask_rate 0, else the positions masked with seed 0).
static int eval_hf(Config cfg, const char *dir, const char *file, int offset, const char *rotations, int attn,
                   int hashes, int json, float mask_rate) {
    char err[1024];
    ReformerConfig mc = cfg.model;
    int max_len = cfg.data.seq_len;  // the model's positions
    if (offset < 0) offset = cfg.data.token_offset;
    long long size;
    FILE *f = files_open(file, &size, err, sizeof(err));
    if (!f) {
        cmd_say("%s", err);
        return 1;
    }
    int *tok = xmalloc((size_t)(size < max_len ? size : max_len) * sizeof(int) + sizeof(int)), T = 0, c;
    while (T <= max_len && T <= size && (c = fgetc(f)) != EOF) tok[T++] = c + offset;
    fclose(f);
    int rc = 0;
    // a length the chunks do not divide is padded at the end, as HF pads it in evaluation
    int padded = (int)plan_padded_length(&mc, T);
    if (T < 2 || padded > max_len) {
        if (padded > T && T <= max_len)
            cmd_say("%s: %d bytes pad to %d, a multiple of the chunk lengths' least common multiple %lld; the model "
                    "takes 2 to %d", file, T, padded, plan_chunk_lcm(&mc), max_len);
        else cmd_say("%s: %d bytes; the model takes 2 to %d", file, T, max_len);
        rc = 2;
    }
    for (int t = 0; !rc && t < T; t++)
        if (tok[t] >= mc.vocab) {
            cmd_say("byte %d + offset %d at %d is outside the vocabulary of %d", tok[t] - offset, offset, t, mc.vocab);
            rc = 2;
        }
    if (!rc && (source_override_attention(&mc, attn, hashes, padded, err, sizeof(err)) ||
                machine_check_memory(&mc, 1, padded, 0, 0, err, sizeof(err)))) {
        cmd_say("%s", err);
        rc = 1;
    }
    if (!rc) {
        Model m;
        model_init(&m, &mc, 1, padded, 1);
        int *in = xcalloc((size_t)padded, sizeof(int)), *labels = NULL;  // padding: token 0, HF's pad_token_id
        memcpy(in, tok, (size_t)T * sizeof(int));
        if (cfg.train.objective == OBJECTIVE_MASKED) {
            cfg.train.mask_rate = mask_rate;
            labels = xmalloc((size_t)padded * sizeof(int));
            mlm_mask(in, labels, padded, T, mask_rate, config_mask_id(&cfg), mc.vocab, 0);
        }
        float *rot = NULL;
        const float *given[MAX_LAYERS] = {0};
        if (source_load(dir, 1, &m, NULL, err, sizeof(err)) ||
            (rotations && hf_load_rotations(rotations, &m, given, &rot, err, sizeof(err)))) {
            cmd_say("%s", err);
            rc = 1;
        } else {
            double loss = model_forward(&m, in, 1, padded, &(ForwardArgs){.rotations = given, .valid = &T, .labels = labels});
            if (!isfinite(loss)) {
                cmd_say("%s: the loss is %g: the weights hold NaN or infinite values", dir, loss);
                rc = 1;
            } else if (json) printf("{\"loss_nats\": %.7f, \"bits\": %.7f, \"tokens\": %lld}\n", loss, loss / log(2.0), m.act.n_labels);
            else printf("%s on %s: loss %.6f nats, %.6f bits per token, %lld tokens\n", dir, file, loss, loss / log(2.0), m.act.n_labels);
        }
        free(rot);
        xfree(in);
        xfree(labels);
        model_free(&m);
    }
    xfree(tok);
    return rc;
}
static const char *const SPLITS[] = {"valid", "test", NULL};

typedef struct {
    const char *config_path, *ckpt, *data_file, *rotations;
    int token_offset, split, json, threads, attn, hashes, precision, predict;
    long long max_tokens;
    float mask_rate;
} Flags;

static const Flag FLAGS[] = {
    {"--ckpt", "CKPT", FLAG_TEXT, offsetof(Flags, ckpt), .help = "checkpoint, or a HuggingFace model directory (required)", .required = 1},
    {"--split", NULL, FLAG_CHOICE, offsetof(Flags, split), .choices = SPLITS, .help = "valid (default) or test"},
    {"--max-tokens", "N", FLAG_LONG, offsetof(Flags, max_tokens), 1, 1LL << 50,
     .help = "the first windows that hold N predicted tokens (default: the whole split)"},
    {"--attn", NULL, FLAG_CHOICE, offsetof(Flags, attn), .choices = run_attention_names,
     .help = "evaluate under other attention, parameters unchanged: full, lsh, or\n"
             "chunks (LSH layers then attend chunks of positions: one bucket)"},
    {"--hashes", "N", FLAG_INT, offsetof(Flags, hashes), 1, MAX_HASHES, .help = "LSH hashing rounds (default: the model's)"},
    {"--threads", "N", FLAG_INT, offsetof(Flags, threads), 1, 1024, .help = "threads (default: all cores)"},
    {"--precision", NULL, FLAG_CHOICE, offsetof(Flags, precision), .choices = precision_names,
     .help = "products of the dense layers: fp32 (default) or bf16 (checkpoints are fp32 either way)"},
    {"--json", NULL, FLAG_SWITCH, offsetof(Flags, json), .help = "one JSON object: loss_nats, bits, tokens, accuracy"},
    {"--data", "FILE", FLAG_TEXT, offsetof(Flags, data_file),
     .help = "score FILE's bytes (raw, gzip or zip) instead of a split: with a checkpoint, every\n"
             "byte after the first in windows of data.seq_len; with --ckpt HF_DIR, as one sequence"},
    {"--token-offset", "K", FLAG_INT, offsetof(Flags, token_offset), 0, 1 << 20,
     .help = "with --data: token = byte + K (default: the checkpoint's data.token_offset or\nDIR/reformer.json, else 0; HF's enwik8 models: 2)"},
    {"--mask-rate", "R", FLAG_FLOAT, offsetof(Flags, mask_rate), 0, 1,
     .help = "a masked LM: the share of positions masked and scored (default: train.mask_rate,\n"
             "HF directories 0); 0 masks nothing and scores every position (HF's labels=input_ids)"},
    {"--predict", NULL, FLAG_SWITCH, offsetof(Flags, predict),
     .help = "a classifier: one line per sequence, INDEX<TAB>PREDICTED<TAB>LABEL, then the result"},
    {"--rotations", "FILE", FLAG_TEXT, offsetof(Flags, rotations),
     .help = "LSH rotations (safetensors, rotations.<k> per LSH layer, shaped as HF\ndraws them) instead of our own"},
    {NULL},
};

static const CommandSpec SPEC = {
    "eval", "[CONFIG.json]", 1,
    "Evaluates a checkpoint: mean loss in nats, bits per token (bits per character\n"
    "for bytes), tokens evaluated, and the accuracy: the copy task's on the copied half,\n"
    "a masked LM's on the masked tokens, a classifier's (ListOps) on the sequences.\n"
    "CONFIG.json, when given, must describe the checkpoint's model.",
    FLAGS,
};

// Returns 1 when --help was asked for (and printed).
static int parse_flags(int argc, char **argv, Flags *f) {
    *f = (Flags){.token_offset = -1, .attn = -1, .mask_rate = -1};
    int n_pos;
    if (flags_parse(&SPEC, f, argc, argv, &f->config_path, &n_pos)) return 1;
    return 0;
}

// The checkpoint's config (cfg, as source_read_config read it) with the flags applied and
// CONFIG.json's data section when one is given (its model must be the checkpoint's). Returns 0,
// or the exit status with the message printed.
static int apply_flags(const Flags *f, Config *cfg) {
    char err[1024];
    int masked = cfg->model.head == HEAD_LM && cfg->train.objective == OBJECTIVE_MASKED;
    if (f->mask_rate >= 0 && !masked) return cmd_fail(2, "--mask-rate: %s is not a masked LM", f->ckpt);
    if (f->mask_rate >= 0) cfg->train.mask_rate = f->mask_rate;
    if (f->predict && cfg->model.head != HEAD_CLASSIFIER) return cmd_fail(2, "--predict: %s is not a classifier", f->ckpt);
    if (f->config_path) {
        Config given;
        config_default(&given);
        if (config_load(f->config_path, &given, err, sizeof(err))) {
            cmd_say("%s", err);
            return 2;
        }
        char key[160];
        if (config_first_difference(&given, cfg, "model", key, sizeof(key))) {
            cmd_say("%s describes a different model than %s (%s)", f->config_path, f->ckpt, key);
            return 2;
        }
        cfg->data = given.data;
    }
    if (cfg->data.kind == DATA_IMAGENET64 && f->split == 1) {
        cmd_say("imagenet64 has no test split; results are reported on the published "
                        "validation set: use --split valid");
        return 2;
    }
    if (source_override_attention(&cfg->model, f->attn, f->hashes, cfg->data.seq_len, err, sizeof(err))) {
        cmd_say("%s", err);
        return 2;
    }
    return 0;
}

static void print_result(const Flags *f, const Config *cfg, const EvalResult *r) {
    const char *split = f->data_file ? "file" : SPLITS[f->split];
    if (f->json) {
        printf("{\"split\": \"%s\", \"loss_nats\": %.6f, \"bits\": %.6f, \"tokens\": %lld", split,
               r->loss_nats, r->bits, r->tokens);
        if (r->accuracy >= 0) printf(", \"accuracy\": %.6f", r->accuracy);
        printf("}\n");
        return;
    }
    int kind = cfg->data.kind;
    printf("%s %s: loss %.4f nats, %.4f bits per %s, %lld tokens", f->data_file ? "file" : "split",
           f->data_file ? f->data_file : split, r->loss_nats, r->bits,
           kind == DATA_ENWIK8 ? "character" : kind == DATA_IMAGENET64 ? "dim" : "token", r->tokens);
    if (r->accuracy >= 0)
        printf(", %s accuracy %.2f%%", kind == DATA_COPY ? "copied-half" : cfg->model.head == HEAD_CLASSIFIER ? "class" : "masked-token",
               100 * r->accuracy);
    printf("\n");
}

// The data eval --data FILE scores with a checkpoint: FILE's bytes as one test split, in windows
// of data.seq_len (or, for a shorter file, the longest length the model runs). Returns 0, or
// the exit status with the message printed.
static int open_file_data(const Flags *f, Config *cfg, Dataset *d) {
    char err[1024];
    if (cfg->data.kind == DATA_LISTOPS) {  // a ListOps TSV file, sequences up to the model's length
        if (dataset_open_file(d, DATA_LISTOPS, f->data_file, cfg->model.vocab, 0, cfg->data.seq_len, err, sizeof(err)))
            return cmd_fail(1, "%s", err);
        return 0;
    }
    if (cfg->data.kind != DATA_ENWIK8)
        return cmd_fail(2, "--data scores bytes; %s's model is the %s task's", f->ckpt,
                        cfg->data.kind == DATA_COPY ? "copy" : "imagenet64");
    if (f->token_offset >= 0) cfg->data.token_offset = f->token_offset;
    if (dataset_open_file(d, DATA_ENWIK8, f->data_file, cfg->model.vocab, cfg->data.token_offset, 0, err, sizeof(err)))
        return cmd_fail(1, "%s", err);
    if (d->len < (size_t)cfg->data.seq_len) cfg->data.seq_len = decoder_forward_len(&cfg->model, (int)d->len);
    if (cfg->data.seq_len < 2) {
        dataset_close(d);
        return cmd_fail(1, "%s: %zu bytes; the model's chunks take at least 2 of them", f->data_file, d->len);
    }
    return 0;
}

// Our checkpoint on a split of its data, or on --data FILE.
static int eval_checkpoint(const Flags *f, Config cfg, int is_hf) {
    char err[1024];
    int rc = apply_flags(f, &cfg);
    if (rc) return rc;
    threads_apply(f->threads);
    if (machine_check_memory(&cfg.model, cfg.train.batch, config_model_length(&cfg), 0, 0, err, sizeof(err))) {
        cmd_say("%s", err);
        return 1;
    }
    Model m;
    model_init(&m, &cfg.model, cfg.train.batch, config_model_length(&cfg), (uint64_t)cfg.train.seed);
    TrainState st;
    float *rot = NULL;
    const float *given[MAX_LAYERS] = {0};
    Dataset data;
    EvalResult r;
    Progress prog;
    if (f->data_file && (rc = open_file_data(f, &cfg, &data))) {
        model_free(&m);
        return rc;
    }
    if (source_load(f->ckpt, is_hf, &m, &st, err, sizeof(err)) ||
        (f->rotations && hf_load_rotations(f->rotations, &m, given, &rot, err, sizeof(err))) ||
        (!f->data_file && dataset_open(&data, &cfg.data, cfg.model.vocab, (uint64_t)cfg.train.seed, err, sizeof(err)))) {
        if (f->data_file) dataset_close(&data);
        rc = 1;
    } else {
        rc = progress_open(&prog, NULL, 0, 0, -1, err, sizeof(err)) ||
             // the rotations of the checkpoint's step, as train's validation drew them
             evaluate(&m, &cfg, &data, f->split == 0 && !f->data_file ? SPLIT_VALID : SPLIT_TEST, f->max_tokens, st.step, given, &r,
                      data.kind == DATA_COPY || f->predict ? NULL : &prog, f->predict ? stdout : NULL, err, sizeof(err));
        if (!rc && !isfinite(r.loss_nats))
            rc = set_error(err, sizeof(err), "%s: the loss is %g: the weights hold NaN or infinite values", f->ckpt,
                           r.loss_nats);
        rc = rc ? 1 : 0;
        progress_close(&prog);
        dataset_close(&data);
    }
    if (rc) cmd_say("%s", err);
    else print_result(f, &cfg, &r);
    model_free(&m);
    free(rot);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    Flags f;
    if (parse_flags(argc, argv, &f)) return 0;
    char err[256];
    if (gemm_set_precision(f.precision, err, sizeof(err))) return cmd_fail(2, "%s", err);
    struct stat sb;
    if (stat(f.ckpt, &sb) == 0 && S_ISDIR(sb.st_mode) && !f.data_file)
        usage_error(&SPEC, "--data FILE is needed with a HuggingFace directory");
    Config cfg;  // read once: every path below takes it from here
    int is_hf;
    if (source_read_config(f.ckpt, &cfg, &is_hf, err, sizeof(err))) return cmd_fail(1, "%s", err);
    // a classifier scores a file of sequences as our checkpoints do; an HF LM head one sequence
    if (!is_hf || cfg.model.head == HEAD_CLASSIFIER) return eval_checkpoint(&f, cfg, is_hf);
    if (f.predict) return cmd_fail(2, "--predict: %s is not a classifier", f.ckpt);
    threads_apply(f.threads);
    return eval_hf(cfg, f.ckpt, f.data_file, f.token_offset, f.rotations, f.attn, f.hashes, f.json,
                   f.mask_rate >= 0 ? f.mask_rate : 0.0f);
}
