// sample.c: `reformer sample --ckpt CKPT`: autoregressive generation. Each new token
// runs the model over the whole prefix (cached incremental decoding is issue #5),
// padded to a multiple of the chunk lengths; causal masks keep the padding unseen.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/common.h"
#include "../core/model.h"
#include "../core/rng.h"
#include "args.h"
#include "checkpoint.h"
#include "commands.h"

static const char *USAGE =
    "reformer sample --ckpt CKPT [--prompt TEXT | --prompt-file F | --prompt-tokens \"0 5 17\"] [--len N] "
    "[--temperature T] [--top-k K] [--top-p P] [--seed S] [--threads N] [--out FILE]";

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

static int read_prompt_file(const char *path, int **tok, int *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int cap = 1024, c;
    *tok = malloc(cap * sizeof(int));
    *n = 0;
    while ((c = fgetc(f)) != EOF) {
        if (*n == cap) *tok = realloc(*tok, (cap *= 2) * sizeof(int));
        (*tok)[(*n)++] = c;
    }
    fclose(f);
    return 0;
}

int cmd_sample(int argc, char **argv) {
    const char *ckpt = NULL, *prompt = NULL, *prompt_file = NULL, *prompt_tokens = NULL, *out_path = NULL;
    int len = 100, threads = 0;
    long long seed = 1;
    SamplerConfig sc = {1.0f, 0, 1.0f};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("usage: %s\n\n"
                   "Generates --len tokens after the prompt. Byte models (vocab >= 256) read and write\n"
                   "bytes; smaller vocabularies (the copy task) read and write token numbers.\n\n"
                   "  --ckpt CKPT          checkpoint (required)\n"
                   "  --prompt TEXT        prompt bytes\n"
                   "  --prompt-file F      prompt bytes from a file\n"
                   "  --prompt-tokens S    prompt as token numbers, e.g. \"0 5 17\"\n"
                   "  --len N              tokens to generate (default 100)\n"
                   "  --temperature T      0 = greedy (default 1)\n"
                   "  --top-k K            keep the K most likely tokens (default 0 = all)\n"
                   "  --top-p P            nucleus sampling mass (default 1 = off)\n"
                   "  --seed S             the same seed gives the same output (default 1)\n"
                   "  --threads N          threads (default: all cores)\n"
                   "  --out FILE           write there instead of standard output\n", USAGE);
            return 0;
        } else if (!strcmp(f, "--ckpt")) ckpt = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--prompt")) prompt = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--prompt-file")) prompt_file = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--prompt-tokens")) prompt_tokens = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--len")) len = (int)arg_int(f, arg_value(argc, argv, &i), 1, 1 << 24);
        else if (!strcmp(f, "--temperature")) sc.temperature = (float)arg_float(f, arg_value(argc, argv, &i), 0, 100);
        else if (!strcmp(f, "--top-k")) sc.top_k = (int)arg_int(f, arg_value(argc, argv, &i), 0, 1 << 24);
        else if (!strcmp(f, "--top-p")) sc.top_p = (float)arg_float(f, arg_value(argc, argv, &i), 1e-6, 1);
        else if (!strcmp(f, "--seed")) seed = arg_int(f, arg_value(argc, argv, &i), 0, 9000000000000000LL);
        else if (!strcmp(f, "--threads")) threads = (int)arg_int(f, arg_value(argc, argv, &i), 1, 1024);
        else if (!strcmp(f, "--out")) out_path = arg_value(argc, argv, &i);
        else usage_error("sample", USAGE, "unknown option '%s'", f);
    }
    if (!ckpt) usage_error("sample", USAGE, "missing --ckpt");
    if (!!prompt + !!prompt_file + !!prompt_tokens > 1)
        usage_error("sample", USAGE, "give one of --prompt, --prompt-file, --prompt-tokens");
    char err[1024];
    Config cfg;
    if (checkpoint_read_config(ckpt, &cfg, err, sizeof(err))) {
        fprintf(stderr, "reformer sample: %s\n", err);
        return 1;
    }
    const ReformerConfig *mc = &cfg.model;
    int V = mc->vocab, bytes = V >= 256;
    int *tok = NULL, n = 0;
    if (prompt_file) {
        if (read_prompt_file(prompt_file, &tok, &n)) {
            fprintf(stderr, "reformer sample: %s: cannot read\n", prompt_file);
            return 1;
        }
    } else if (prompt_tokens) {
        tok = malloc((strlen(prompt_tokens) + 1) * sizeof(int));
        char *copy = strdup(prompt_tokens);
        for (char *t = strtok(copy, " ,"); t; t = strtok(NULL, " ,"))
            tok[n++] = (int)arg_int("--prompt-tokens", t, 0, V - 1);
        free(copy);
    } else if (prompt) {
        n = (int)strlen(prompt);
        tok = malloc((n + 1) * sizeof(int));
        for (int i = 0; i < n; i++) tok[i] = (unsigned char)prompt[i];
    }
    if (n == 0) {  // no prompt: start from token 0
        tok = realloc(tok, sizeof(int));
        tok[n++] = 0;
    }
    for (int i = 0; i < n; i++)
        if (tok[i] >= V) {
            fprintf(stderr, "reformer sample: prompt byte %d at %d is outside the model's vocabulary of %d\n", tok[i], i, V);
            free(tok);
            return 2;
        }
    int max_pos = mc->axial_shape[0] * mc->axial_shape[1], total = n + len;
    int align = model_chunk_lcm(mc);  // padded lengths must be multiples of every chunk length
    int T = (int)round_up((size_t)total, (size_t)align);
    if (T > max_pos) {
        fprintf(stderr, "reformer sample: prompt %d + --len %d needs %d positions (padded), the model has %d\n",
                n, len, T, max_pos);
        free(tok);
        return 2;
    }
    FILE *out = out_path ? fopen(out_path, "wb") : stdout;
    if (!out) {
        fprintf(stderr, "reformer sample: %s: cannot write\n", out_path);
        free(tok);
        return 1;
    }
    threads_set(threads ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    Model m;
    model_init(&m, mc, 1, T, (uint64_t)cfg.train.seed);
    TrainState st;
    if (checkpoint_load(ckpt, &m, NULL, &st, err, sizeof(err))) {
        fprintf(stderr, "reformer sample: %s\n", err);
        model_free(&m);
        free(tok);
        if (out != stdout) fclose(out);
        return 1;
    }
    Rng rng;
    rng_seed(&rng, (uint64_t)seed);
    int *seq = xcalloc(T, sizeof(int)), *idx = xmalloc(V * sizeof(int));
    double *p = xmalloc(V * sizeof(double));
    memcpy(seq, tok, n * sizeof(int));
    float *logits = xmalloc((size_t)T * V * sizeof(float));
    for (int i = 0; i < n; i++) bytes ? fputc(seq[i], out) : fprintf(out, "%s%d", i ? " " : "", seq[i]);
    for (int cur = n; cur < total; cur++) {
        int L = (int)round_up((size_t)cur, (size_t)align);
        m.step = 0;  // fixed rotations: the same seed gives the same text
        model_forward(&m, seq, 1, L);
        model_logits(&m, logits);
        seq[cur] = sampler_pick(logits + (size_t)(cur - 1) * V, V, &sc, &rng, idx, p);
        bytes ? fputc(seq[cur], out) : fprintf(out, " %d", seq[cur]);
        fflush(out);
    }
    if (!bytes) fprintf(out, "\n");
    int bad = ferror(out);
    if (out != stdout && fclose(out) != 0) bad = 1;
    if (bad) fprintf(stderr, "reformer sample: write error on %s\n", out_path ? out_path : "standard output");
    xfree(seq);
    xfree(idx);
    xfree(p);
    xfree(logits);
    free(tok);
    model_free(&m);
    return bad;
}
