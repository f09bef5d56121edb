// sample.c: `reformer sample --ckpt CKPT|HF_DIR`: autoregressive generation of text, or of
// 64x64 images (PNG files and a contact sheet) for imagenet64 models. Causal models decode
// with the cache of core/decode.c (HF's past_buckets_states semantics), O(window) work per
// token; --no-cache (and bidirectional models) rerun the model over the whole prefix for
// every token, padded to a multiple of the chunk lengths (causal masks keep padding unseen).
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>
#include <sys/stat.h>

#include "../core/attention_lsh.h"
#include "../core/common.h"
#include "../core/decode.h"
#include "../core/model.h"
#include "../core/rng.h"
#include "../data/imagenet.h"
#include "../data/png.h"
#include "args.h"
#include "machine.h"
#include "commands.h"
#include "hf_model.h"
#include "model_source.h"
#include "progress.h"
#include "../data/files.h"



typedef struct {
    float temperature;  // 0: greedy
    int top_k;          // 0: off
    float top_p;        // 1: off
} SamplerConfig;

static const float *sort_key;
static int by_logit_desc(const void *a, const void *b) {
    float x = sort_key[*(const int *)a], y = sort_key[*(const int *)b];
    return (x < y) - (x > y);
}

// Draws a token from logits (V): temperature, then top-k, then top-p (nucleus).
static int sampler_pick(const float *logits, int V, const SamplerConfig *c, Rng *rng, int *idx, double *p) {
    if (c->temperature == 0.0f) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        return best;
    }
    for (int v = 0; v < V; v++) idx[v] = v;
    sort_key = logits;
    qsort(idx, V, sizeof(int), by_logit_desc);
    int keep = c->top_k > 0 && c->top_k < V ? c->top_k : V;
    double sum = 0;
    for (int i = 0; i < keep; i++) sum += p[i] = exp((logits[idx[i]] - logits[idx[0]]) / c->temperature);
    if (c->top_p < 1.0f) {
        double acc = 0;
        int n = 0;
        while (n < keep && acc < c->top_p * sum) acc += p[n++];
        keep = n > 0 ? n : 1;
        sum = acc > 0 ? acc : p[0];
    }
    double u = rng_uniform(rng) * sum;
    for (int i = 0; i < keep; i++) {
        u -= p[i];
        if (u < 0) return idx[i];
    }
    return idx[keep - 1];
}

// The bytes of path as tokens; a prompt longer than the model's positions is refused
// before it is read.
static int read_prompt_file(const char *path, int max_len, int **tok, int *n, char *err, size_t cap) {
    char *text;
    size_t len;
    if (files_read_all(path, (size_t)max_len, &text, &len, err, cap)) return -1;
    *tok = malloc((len + 1) * sizeof(int));
    if (!*tok) {
        free(text);
        return set_error(err, cap, "%s: out of memory", path);
    }
    for (size_t i = 0; i < len; i++) (*tok)[i] = (unsigned char)text[i];
    *n = (int)len;
    free(text);
    return 0;
}

typedef struct {
    Model *m;
    Decoder d;
    int cached;     // decoder in use; else the whole prefix per token
    int align;      // no cache: padded lengths are multiples of this
    float *logits;  // (T, V) without the cache, (V) with it
    const float *const *rotations;  // given LSH rotations per layer (--rotations), else NULL
    int T;          // positions the model and the cache hold
} Generator;

// Generates tokens seq[n..total) after the prompt seq[0..n); each new token goes to emit.
static void generate(Generator *g, int *seq, int n, int total, const SamplerConfig *sc, Rng *rng,
                     void (*emit)(void *ctx, int token, int at), void *ctx) {
    int V = g->m->spec.cfg.vocab, *idx = xmalloc((size_t)V * sizeof(int));
    double *p = xmalloc((size_t)V * sizeof(double));
    if (g->cached) decoder_prefill(&g->d, seq, n, g->logits);
    for (int cur = n; cur < total; cur++) {
        const float *row = g->logits;
        if (!g->cached) {
            // step 0's rotations every time: the same seed gives the same output
            model_forward(g->m, seq, 1, (int)round_up((size_t)cur, (size_t)g->align),
                          &(ForwardArgs){.rotations = g->rotations});
            model_logits(g->m, g->logits);
            row = g->logits + (size_t)(cur - 1) * V;
        }
        seq[cur] = sampler_pick(row, V, sc, rng, idx, p);
        emit(ctx, seq[cur], cur);
        if (g->cached && cur + 1 < total) decoder_step(&g->d, seq[cur], g->logits);
    }
    xfree(idx);
    xfree(p);
}

typedef struct {
    FILE *out;
    int offset, bytes;  // byte models print token - offset as a byte (other tokens: nothing)
} TextSink;

static void emit_text(void *ctx, int token, int at) {
    TextSink *s = ctx;
    if (!s->bytes) fprintf(s->out, "%s%d", at ? " " : "", token);
    else if (token - s->offset >= 0 && token - s->offset < 256) fputc(token - s->offset, s->out);
    fflush(s->out);
}

typedef struct {
    Progress prog;
    char label[64];  // "image 2/16"
} ImageProgress;

static void emit_pixel(void *ctx, int token, int at) {
    ImageProgress *p = ctx;
    progress_count(&p->prog, p->label, at + 1, IMAGE_BYTES, -1);
}

typedef struct {
    const char *ckpt, *prompt, *prompt_file, *prompt_tokens, *out_path, *rotations;
    int len, threads, samples, no_cache, offset, attn, hashes, precision;
    long long seed;
    SamplerConfig sc;
} Flags;

static const Flag FLAGS[] = {
    {"--ckpt", "CKPT|DIR", FLAG_TEXT, offsetof(Flags, ckpt), .help = "our checkpoint or a HuggingFace model directory (required)", .required = 1},
    {"--prompt", "TEXT", FLAG_TEXT, offsetof(Flags, prompt), .help = "prompt bytes"},
    {"--prompt-file", "F", FLAG_TEXT, offsetof(Flags, prompt_file), .help = "prompt bytes from a file"},
    {"--prompt-tokens", "S", FLAG_TEXT, offsetof(Flags, prompt_tokens), .help = "prompt as token numbers, e.g. \"0 5 17\""},
    {"--len", "N", FLAG_INT, offsetof(Flags, len), 1, 1 << 24, .help = "tokens to generate (default 100; images: the whole image)"},
    {"--samples", "N", FLAG_INT, offsetof(Flags, samples), 1, 4096, .help = "images to generate (default 4)"},
    {"--temperature", "T", FLAG_FLOAT, offsetof(Flags, sc.temperature), 0, 100, .help = "0 = greedy (default 1)"},
    {"--top-k", "K", FLAG_INT, offsetof(Flags, sc.top_k), 0, 1 << 24, .help = "keep the K most likely tokens (default 0 = all)"},
    {"--top-p", "P", FLAG_FLOAT, offsetof(Flags, sc.top_p), 1e-6, 1, .help = "nucleus sampling mass (default 1 = off)"},
    {"--seed", "S", FLAG_LONG, offsetof(Flags, seed), 0, 9e15, .help = "the same seed gives the same output (default 1)"},
    {"--token-offset", "K", FLAG_INT, offsetof(Flags, offset), 0, 65536,
     .help = "token = byte + K (default: the model's data.token_offset)"},
    {"--rotations", "FILE", FLAG_TEXT, offsetof(Flags, rotations), .help = "LSH rotations (safetensors, rotations.<k> per LSH layer)"},
    {"--attn", NULL, FLAG_CHOICE, offsetof(Flags, attn), .choices = run_attention_names,
     .help = "decode under other attention (see eval --help): lsh, chunks, full"},
    {"--hashes", "N", FLAG_INT, offsetof(Flags, hashes), 1, MAX_HASHES, .help = "LSH hashing rounds (default: the model's)"},
    {"--no-cache", NULL, FLAG_SWITCH, offsetof(Flags, no_cache), .help = "rerun the whole prefix per token instead of the decoding cache"},
    {"--threads", "N", FLAG_INT, offsetof(Flags, threads), 1, 1024, .help = "threads (default: all cores)"},
    {"--precision", NULL, FLAG_CHOICE, offsetof(Flags, precision), .choices = precision_names,
     .help = "products of the dense layers: fp32 (default) or bf16 (checkpoints are fp32 either way)"},
    {"--out", "FILE|DIR", FLAG_TEXT, offsetof(Flags, out_path),
     .help = "text: a file (default standard output); images: a directory\n(default samples)"},
    {NULL},
};

static const CommandSpec SPEC = {
    "sample", "", 0,
    "Generates --len tokens after the prompt. Byte models (vocab >= 256 + token offset)\n"
    "read and write bytes; smaller vocabularies (the copy task) token numbers. Image models\n"
    "(data.kind imagenet64) write --samples 64x64 PNGs and a contact sheet into --out DIR;\n"
    "the prompt is then the first subpixels in the model's pixel order (default: one\n"
    "random subpixel, since the model predicts every subpixel but the first).",
    FLAGS,
};

// Returns 1 when --help was asked for (and printed).
static int parse_flags(int argc, char **argv, Flags *f) {
    *f = (Flags){.len = 100, .samples = 4, .offset = -1, .attn = -1, .seed = 1, .sc = {1.0f, 0, 1.0f}};
    int n_pos;
    if (flags_parse(&SPEC, f, argc, argv, NULL, &n_pos)) return 1;
    if (!!f->prompt + !!f->prompt_file + !!f->prompt_tokens > 1)
        usage_error(&SPEC, "give one of --prompt, --prompt-file, --prompt-tokens");
    return 0;
}

// The prompt as tokens (*tok, n; none: NULL, 0), each checked against the vocabulary.
// Returns 0, or the exit status with the message printed.
static int read_prompt(const Flags *f, const ReformerConfig *mc, int offset, int **tok, int *n) {
    char err[1024];
    int V = mc->vocab;
    *tok = NULL;
    *n = 0;
    if (f->prompt_file) {
        if (read_prompt_file(f->prompt_file, mc->axial_shape[0] * mc->axial_shape[1], tok, n, err, sizeof(err))) {
            cmd_say("--prompt-file %s", err);
            return 1;
        }
        for (int i = 0; i < *n; i++) (*tok)[i] += offset;
    } else if (f->prompt_tokens) {
        char *copy = strdup(f->prompt_tokens);
        *tok = malloc((strlen(f->prompt_tokens) + 1) * sizeof(int));
        if (!*tok || !copy) {
            free(copy);
            cmd_say("out of memory");
            return 1;
        }
        for (char *t = strtok(copy, " ,"); t; t = strtok(NULL, " ,"))
            (*tok)[(*n)++] = (int)arg_int("--prompt-tokens", t, 0, V - 1);
        free(copy);
    } else if (f->prompt) {
        *n = (int)strlen(f->prompt);
        if (!(*tok = malloc((*n + 1) * sizeof(int)))) {
            cmd_say("out of memory");
            return 1;
        }
        for (int i = 0; i < *n; i++) (*tok)[i] = (unsigned char)f->prompt[i] + offset;
    }
    for (int i = 0; i < *n; i++)
        if ((*tok)[i] >= V) {
            cmd_say("prompt token %d at %d is outside the model's vocabulary of %d", (*tok)[i],
                    i, V);
            return 2;
        }
    return 0;
}

// Text: the prompt (or token 0) and the generated tokens to out_path or standard output.
static int sample_text(Generator *g, const Flags *f, int *seq, const int *tok, int n, int total, int offset, int bytes,
                       const float *const *given) {
    FILE *out = f->out_path ? fopen(f->out_path, "wb") : stdout;
    if (!out) {
        cmd_say("%s: cannot write", f->out_path);
        return 1;
    }
    if (n) memcpy(seq, tok, (size_t)n * sizeof(int));
    else n = 1;  // no prompt: start from token 0 (seq is zeroed)
    TextSink sink = {out, offset, bytes};
    for (int i = 0; i < n; i++) emit_text(&sink, seq[i], i);
    Rng rng;
    rng_seed(&rng, (uint64_t)f->seed);
    if (g->cached) decoder_init(&g->d, g->m, g->T, given);
    generate(g, seq, n, total, &f->sc, &rng, emit_text, &sink);
    if (g->cached) decoder_free(&g->d);
    if (!bytes) fprintf(out, "\n");
    int bad = ferror(out);
    if (out != stdout && fclose(out) != 0) bad = 1;
    if (bad) cmd_say("write error on %s", f->out_path ? f->out_path : "standard output");
    return bad;
}

// Images: --samples PNGs in dir and a contact sheet, each image from its own seed.
static int sample_images(Generator *g, const Flags *f, int *seq, const int *tok, int n, int offset, int pixel_order,
                         const char *dir, const float *const *given) {
    char err[1024], path[4096];
    int rc = 0, samples = f->samples;
    uint8_t *rgb = xmalloc((size_t)samples * IMAGE_BYTES);
    int *pix = xmalloc(IMAGE_BYTES * sizeof(int));
    for (int s = 0; s < samples && !rc; s++) {
        Rng rng;
        rng_seed(&rng, hash_stream((uint64_t)f->seed, 0x1a9e, (uint64_t)s, 0));
        memcpy(seq, tok, (size_t)n * sizeof(int));
        int start = n;
        if (start == 0) seq[start++] = (int)rng_below(&rng, 256) + offset;  // the unpredicted first subpixel
        ImageProgress prog;
        if ((rc = progress_open(&prog.prog, NULL, 0, 0, -1, err, sizeof(err)) ? 1 : 0)) break;
        snprintf(prog.label, sizeof(prog.label), "image %d/%d", s + 1, samples);
        if (g->cached) decoder_init(&g->d, g->m, g->T, given);
        generate(g, seq, start, IMAGE_BYTES, &f->sc, &rng, emit_pixel, &prog);
        if (g->cached) decoder_free(&g->d);
        progress_close(&prog.prog);
        for (int t = 0; t < IMAGE_BYTES; t++) pix[t] = seq[t] - offset;
        image_from_tokens(pix, pixel_order, rgb + (size_t)s * IMAGE_BYTES);
        snprintf(path, sizeof(path), "%s/sample-%03d.png", dir, s);
        if (png_write_rgb(path, rgb + (size_t)s * IMAGE_BYTES, IMAGE_SIDE, IMAGE_SIDE, err, sizeof(err))) rc = 1;
        else printf("%s\n", path);
    }
    if (!rc) {
        int cols = 1, w, h;
        while (cols * cols < samples) cols++;
        png_sheet_size(samples, IMAGE_SIDE, cols, 2, &w, &h);
        uint8_t *sheet = xmalloc((size_t)w * h * 3);
        png_sheet(rgb, samples, IMAGE_SIDE, cols, 2, sheet);
        snprintf(path, sizeof(path), "%s/samples.png", dir);
        if (png_write_rgb(path, sheet, w, h, err, sizeof(err))) rc = 1;
        else printf("%s\n", path);
        xfree(sheet);
    }
    if (rc) cmd_say("%s", err);
    xfree(rgb);
    xfree(pix);
    return rc;
}

int cmd_sample(int argc, char **argv) {
    Flags f;
    if (parse_flags(argc, argv, &f)) return 0;
    char err[1024];
    if (gemm_set_precision(f.precision, err, sizeof(err))) return cmd_fail(2, "%s", err);
    Config cfg;
    int is_hf;
    if (source_read_config(f.ckpt, &cfg, &is_hf, err, sizeof(err))) {
        cmd_say("%s", err);
        return 1;
    }
    if (cfg.model.head != HEAD_LM || cfg.train.objective != OBJECTIVE_NEXT)
        return cmd_fail(2, "%s is a %s: sample continues text with a causal LM; score it with eval%s", f.ckpt,
                        cfg.model.head == HEAD_CLASSIFIER ? "classifier" : "masked LM",
                        cfg.model.head == HEAD_CLASSIFIER ? " --predict" : "");
    ReformerConfig mc = cfg.model;
    int V = mc.vocab, offset = f.offset >= 0 ? f.offset : cfg.data.token_offset;
    int images = cfg.data.kind == DATA_IMAGENET64, bytes = V >= 256 + offset;
    int *tok, n, rc = read_prompt(&f, &mc, offset, &tok, &n);
    // the length: the prompt and --len (an image: its subpixels), padded without the cache
    int max_pos = mc.axial_shape[0] * mc.axial_shape[1], total = images ? IMAGE_BYTES : imax(n, 1) + f.len;
    int cached = mc.causal && !f.no_cache;
    long long align = plan_chunk_lcm(&mc), padded = cached ? total : (total + align - 1) / align * align;
    if (!rc && images && n >= IMAGE_BYTES) {
        cmd_say("the prompt holds %d subpixels; an image has %d", n, IMAGE_BYTES);
        rc = 2;
    } else if (!rc && padded > max_pos) {
        cmd_say("prompt %d + --len %d needs %lld positions%s, the model has %d", n, f.len,
                padded, cached ? "" : " (padded)", max_pos);
        rc = 2;
    } else if (!rc && source_override_attention(&mc, f.attn, f.hashes, (int)padded, err, sizeof(err))) {
        cmd_say("%s", err);
        rc = 2;
    }
    const char *dir = f.out_path ? f.out_path : "samples";
    if (!rc && images && mkdir(dir, 0755) && errno != EEXIST) {
        cmd_say("%s: cannot create the directory: %s", dir, strerror(errno));
        rc = 1;
    }
    int T = (int)padded;
    threads_apply(f.threads);
    // an unset bucket count resolves from the length the model was trained at, not this one
    plan_resolve_buckets(&mc, cfg.data.seq_len);
    if (!rc && machine_check_memory(&mc, 1, T, 0, 0, err, sizeof(err))) {
        cmd_say("%s", err);
        rc = 1;
    }
    if (rc) {
        free(tok);
        return rc;
    }
    Model m;
    model_init(&m, &mc, 1, T, (uint64_t)cfg.train.seed);
    float *rot = NULL;
    const float *given[MAX_LAYERS] = {0};
    if (source_load(f.ckpt, is_hf, &m, NULL, err, sizeof(err)) ||
        (f.rotations && hf_load_rotations(f.rotations, &m, given, &rot, err, sizeof(err)))) {
        cmd_say("%s", err);
        rc = 1;
    }
    Generator g = {&m, {0}, cached, (int)align, xmalloc((size_t)(cached ? 1 : T) * V * sizeof(float)), given, T};
    int *seq = xcalloc((size_t)T, sizeof(int));
    if (!rc && !images) rc = sample_text(&g, &f, seq, tok, n, total, offset, bytes, given);
    else if (!rc) rc = sample_images(&g, &f, seq, tok, n, offset, cfg.data.pixel_order, dir, given);
    xfree(seq);
    xfree(g.logits);
    free(tok);
    free(rot);
    model_free(&m);
    return rc;
}
