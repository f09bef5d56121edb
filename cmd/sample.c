// sample.c: `reformer sample --ckpt CKPT|HF_DIR`: autoregressive generation of text, or of
// 64x64 images (PNG files and a contact sheet) for imagenet64 models. Causal models decode
// with the cache of core/decode.c (HF's past_buckets_states semantics), O(window) work per
// token; --no-cache (and bidirectional models) rerun the model over the whole prefix for
// every token, padded to a multiple of the chunk lengths (causal masks keep padding unseen).
#include <math.h>
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
#include "commands.h"
#include "hf_model.h"
#include "model_source.h"
#include "progress.h"
#include "../data/files.h"

static const char *USAGE =
    "reformer sample --ckpt CKPT|HF_DIR [--prompt TEXT | --prompt-file F | --prompt-tokens \"0 5 17\"] [--len N] "
    "[--samples N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--token-offset K] [--rotations FILE] "
    "[--attn lsh|local|full] [--hashes N] [--no-cache] [--threads N] [--out FILE|DIR]";


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
} Generator;

// Generates tokens seq[n..total) after the prompt seq[0..n); each new token goes to emit.
static void generate(Generator *g, int *seq, int n, int total, const SamplerConfig *sc, Rng *rng,
                     void (*emit)(void *ctx, int token, int at), void *ctx) {
    int V = g->m->cfg.vocab, *idx = xmalloc((size_t)V * sizeof(int));
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

int cmd_sample(int argc, char **argv) {
    const char *ckpt = NULL, *prompt = NULL, *prompt_file = NULL, *prompt_tokens = NULL, *out_path = NULL,
               *rotations = NULL;
    int len = 100, threads = 0, samples = 4, no_cache = 0, offset_flag = -1, attn = -1, hashes = 0;
    long long seed = 1;
    SamplerConfig sc = {1.0f, 0, 1.0f};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("usage: %s\n\n"
                   "Generates --len tokens after the prompt. Byte models (vocab >= 256 + token offset)\n"
                   "read and write bytes; smaller vocabularies (the copy task) token numbers. Image models\n"
                   "(data.kind imagenet64) write --samples 64x64 PNGs and a contact sheet into --out DIR;\n"
                   "the prompt is then the first subpixels in the model's pixel order (default: one\n"
                   "random subpixel, since the model predicts every subpixel but the first).\n\n"
                   "  --ckpt CKPT|DIR      our checkpoint or a HuggingFace model directory (required)\n"
                   "  --prompt TEXT        prompt bytes\n"
                   "  --prompt-file F      prompt bytes from a file\n"
                   "  --prompt-tokens S    prompt as token numbers, e.g. \"0 5 17\"\n"
                   "  --len N              tokens to generate (default 100; images: the whole image)\n"
                   "  --samples N          images to generate (default 4)\n"
                   "  --temperature T      0 = greedy (default 1)\n"
                   "  --top-k K            keep the K most likely tokens (default 0 = all)\n"
                   "  --top-p P            nucleus sampling mass (default 1 = off)\n"
                   "  --seed S             the same seed gives the same output (default 1)\n"
                   "  --token-offset K     token = byte + K (default: the model's data.token_offset)\n"
                   "  --rotations FILE     LSH rotations (safetensors, rotations.<k> per LSH layer)\n"
                   "  --attn KIND          decode under other attention (see eval --help): full, lsh, local\n"
                   "  --hashes N           LSH hashing rounds (default: the model's)\n"
                   "  --no-cache           rerun the whole prefix per token instead of the decoding cache\n"
                   "  --threads N          threads (default: all cores)\n"
                   "  --out FILE|DIR       text: a file (default standard output); images: a directory\n"
                   "                       (default samples)\n", USAGE);
            return 0;
        } else if (!strcmp(f, "--ckpt")) ckpt = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--prompt")) prompt = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--prompt-file")) prompt_file = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--prompt-tokens")) prompt_tokens = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--len")) len = (int)arg_int(f, arg_value(argc, argv, &i), 1, 1 << 24);
        else if (!strcmp(f, "--samples")) samples = (int)arg_int(f, arg_value(argc, argv, &i), 1, 4096);
        else if (!strcmp(f, "--temperature")) sc.temperature = (float)arg_float(f, arg_value(argc, argv, &i), 0, 100);
        else if (!strcmp(f, "--top-k")) sc.top_k = (int)arg_int(f, arg_value(argc, argv, &i), 0, 1 << 24);
        else if (!strcmp(f, "--top-p")) sc.top_p = (float)arg_float(f, arg_value(argc, argv, &i), 1e-6, 1);
        else if (!strcmp(f, "--seed")) seed = arg_int(f, arg_value(argc, argv, &i), 0, 9000000000000000LL);
        else if (!strcmp(f, "--token-offset")) offset_flag = (int)arg_int(f, arg_value(argc, argv, &i), 0, 65536);
        else if (!strcmp(f, "--rotations")) rotations = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--no-cache")) no_cache = 1;
        else if (!strcmp(f, "--attn")) attn = arg_choice(f, arg_value(argc, argv, &i), attention_names);
        else if (!strcmp(f, "--hashes")) hashes = (int)arg_int(f, arg_value(argc, argv, &i), 1, MAX_HASHES);
        else if (!strcmp(f, "--threads")) threads = (int)arg_int(f, arg_value(argc, argv, &i), 1, 1024);
        else if (!strcmp(f, "--out")) out_path = arg_value(argc, argv, &i);
        else usage_error("sample", USAGE, "unknown option '%s'", f);
    }
    if (!ckpt) usage_error("sample", USAGE, "missing --ckpt");
    if (!!prompt + !!prompt_file + !!prompt_tokens > 1)
        usage_error("sample", USAGE, "give one of --prompt, --prompt-file, --prompt-tokens");
    char err[1024];
    Config cfg;
    int is_hf;
    if (source_read_config(ckpt, &cfg, &is_hf, err, sizeof(err))) {
        fprintf(stderr, "reformer sample: %s\n", err);
        return 1;
    }
    ReformerConfig mc = cfg.model;
    int V = mc.vocab, offset = offset_flag >= 0 ? offset_flag : cfg.data.token_offset;
    int images = cfg.data.kind == DATA_IMAGENET64, bytes = V >= 256 + offset;
    int *tok = NULL, n = 0;
    if (prompt_file) {
        if (read_prompt_file(prompt_file, mc.axial_shape[0] * mc.axial_shape[1], &tok, &n, err, sizeof(err))) {
            fprintf(stderr, "reformer sample: --prompt-file %s\n", err);
            return 1;
        }
        for (int i = 0; i < n; i++) tok[i] += offset;
    } else if (prompt_tokens) {
        tok = malloc((strlen(prompt_tokens) + 1) * sizeof(int));
        char *copy = strdup(prompt_tokens);
        if (!tok || !copy) {
            fprintf(stderr, "reformer sample: out of memory\n");
            return 1;
        }
        for (char *t = strtok(copy, " ,"); t; t = strtok(NULL, " ,"))
            tok[n++] = (int)arg_int("--prompt-tokens", t, 0, V - 1);
        free(copy);
    } else if (prompt) {
        n = (int)strlen(prompt);
        tok = malloc((n + 1) * sizeof(int));
        if (!tok) {
            fprintf(stderr, "reformer sample: out of memory\n");
            return 1;
        }
        for (int i = 0; i < n; i++) tok[i] = (unsigned char)prompt[i] + offset;
    }
    for (int i = 0; i < n; i++)
        if (tok[i] >= V) {
            fprintf(stderr, "reformer sample: prompt token %d at %d is outside the model's vocabulary of %d\n", tok[i], i, V);
            free(tok);
            return 2;
        }
    int max_pos = mc.axial_shape[0] * mc.axial_shape[1];
    int total = images ? IMAGE_BYTES : imax(n, 1) + len;
    if (images && n >= IMAGE_BYTES) {
        fprintf(stderr, "reformer sample: the prompt holds %d subpixels; an image has %d\n", n, IMAGE_BYTES);
        free(tok);
        return 2;
    }
    int cached = mc.causal && !no_cache;
    long long align = model_chunk_lcm(&mc), padded = cached ? total : (total + align - 1) / align * align;
    if (padded > max_pos) {
        fprintf(stderr, "reformer sample: prompt %d + --len %d needs %lld positions%s, the model has %d\n", n, len, padded,
                cached ? "" : " (padded)", max_pos);
        free(tok);
        return 2;
    }
    int T = (int)padded;
    if (source_override_attention(&mc, attn, hashes, T, err, sizeof(err))) {
        fprintf(stderr, "reformer sample: %s\n", err);
        free(tok);
        return 2;
    }
    if (images) {
        const char *dir = out_path ? out_path : "samples";
        if (mkdir(dir, 0755) && errno != EEXIST) {
            fprintf(stderr, "reformer sample: %s: cannot create the directory: %s\n", dir, strerror(errno));
            free(tok);
            return 1;
        }
        out_path = dir;
    }
    threads_set(threads ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    // an unset bucket count resolves from the length the model was trained at, not this one
    if (mc.n_bucket_factors == 0)
        mc.n_bucket_factors = lsh_default_buckets(mc.buckets, imax(cfg.data.seq_len, mc.lsh_chunk), mc.lsh_chunk, max_pos);
    if (source_check_memory(&mc, 1, T, 0, err, sizeof(err))) {
        fprintf(stderr, "reformer sample: %s\n", err);
        free(tok);
        return 1;
    }
    Model m;
    model_init(&m, &mc, 1, T, (uint64_t)cfg.train.seed);
    float *rot = NULL;
    const float *given[MAX_LAYERS] = {0};
    int rc = 0;
    if (source_load(ckpt, is_hf, &m, NULL, err, sizeof(err)) ||
        (rotations && hf_load_rotations(rotations, &m, given, &rot, err, sizeof(err)))) {
        fprintf(stderr, "reformer sample: %s\n", err);
        rc = 1;
    }
    FILE *out = rc || images ? NULL : out_path ? fopen(out_path, "wb") : stdout;
    if (!rc && !images && !out) {
        fprintf(stderr, "reformer sample: %s: cannot write\n", out_path);
        rc = 1;
    }
    Generator g = {&m, {0}, cached, (int)align, xmalloc((size_t)(cached ? 1 : T) * V * sizeof(float)), given};
    int *seq = xcalloc((size_t)T, sizeof(int));
    if (!rc && !images) {
        if (n) memcpy(seq, tok, (size_t)n * sizeof(int));
        else n = 1;  // no prompt: start from token 0 (seq is zeroed)
        TextSink sink = {out, offset, bytes};
        for (int i = 0; i < n; i++) emit_text(&sink, seq[i], i);
        Rng rng;
        rng_seed(&rng, (uint64_t)seed);
        if (cached) decoder_init(&g.d, &m, T, given);
        generate(&g, seq, n, total, &sc, &rng, emit_text, &sink);
        if (cached) decoder_free(&g.d);
        if (!bytes) fprintf(out, "\n");
        int bad = ferror(out);
        if (out != stdout && fclose(out) != 0) bad = 1;
        if (bad) fprintf(stderr, "reformer sample: write error on %s\n", out_path ? out_path : "standard output");
        rc = bad;
    } else if (!rc) {
        uint8_t *rgb = xmalloc((size_t)samples * IMAGE_BYTES);
        int *pix = xmalloc(IMAGE_BYTES * sizeof(int));
        for (int s = 0; s < samples && !rc; s++) {
            Rng rng;
            rng_seed(&rng, hash_stream((uint64_t)seed, 0x1a9e, (uint64_t)s, 0));
            memcpy(seq, tok, (size_t)n * sizeof(int));
            int start = n;
            if (start == 0) seq[start++] = (int)rng_below(&rng, 256) + offset;  // the unpredicted first subpixel
            ImageProgress prog;
            if (progress_open(&prog.prog, NULL, 0, 0, -1, err, sizeof(err))) {
                rc = 1;
                break;
            }
            snprintf(prog.label, sizeof(prog.label), "image %d/%d", s + 1, samples);
            if (cached) decoder_init(&g.d, &m, T, given);
            generate(&g, seq, start, IMAGE_BYTES, &sc, &rng, emit_pixel, &prog);
            if (cached) decoder_free(&g.d);
            progress_close(&prog.prog);
            for (int t = 0; t < IMAGE_BYTES; t++) pix[t] = seq[t] - offset;
            image_from_tokens(pix, cfg.data.pixel_order, rgb + (size_t)s * IMAGE_BYTES);
            char path[4096];
            snprintf(path, sizeof(path), "%s/sample-%03d.png", out_path, s);
            if (png_write_rgb(path, rgb + (size_t)s * IMAGE_BYTES, IMAGE_SIDE, IMAGE_SIDE, err, sizeof(err))) rc = 1;
            else printf("%s\n", path);
        }
        if (!rc) {
            int cols = 1, w, h;
            while (cols * cols < samples) cols++;
            png_sheet_size(samples, IMAGE_SIDE, cols, 2, &w, &h);
            uint8_t *sheet = xmalloc((size_t)w * h * 3);
            png_sheet(rgb, samples, IMAGE_SIDE, cols, 2, sheet);
            char path[4096];
            snprintf(path, sizeof(path), "%s/samples.png", out_path);
            if (png_write_rgb(path, sheet, w, h, err, sizeof(err))) rc = 1;
            else printf("%s\n", path);
            xfree(sheet);
        }
        if (rc) fprintf(stderr, "reformer sample: %s\n", err);
        xfree(rgb);
        xfree(pix);
    }
    xfree(seq);
    xfree(g.logits);
    free(tok);
    free(rot);
    model_free(&m);
    return rc;
}
