// harness.c: helpers shared by the tests.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../core/common.h"
#include "../core/attention.h"
#include "../core/rng.h"
#include "test.h"

int test_failures;

void fill_normal(float *x, size_t n, float std, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(&r);
}

double max_rel_diff(const float *a, const float *b, size_t n) {
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return scale > 0.0 ? diff / scale : diff;
}

double dot_loss(const float *w, const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * x[i];
    return s;
}

double gradcheck(LossFn loss, void *ctx, float *x, const float *g, size_t n, uint64_t seed,
                 double *analytic) {
    float *x0 = xmalloc(n * sizeof(float)), *d = xmalloc(n * sizeof(float));
    memcpy(x0, x, n * sizeof(float));
    double rms = 0.0;
    for (size_t i = 0; i < n; i++) rms += (double)x[i] * x[i];
    rms = sqrt(rms / (n ? n : 1));
    fill_normal(d, n, (float)fmax(rms, 0.05), seed);
    double ana = 0.0;
    for (size_t i = 0; i < n; i++) ana += (double)g[i] * d[i];
    static const double steps[] = {1e-1, 5e-2, 2e-2, 1e-2, 5e-3, 2e-3, 1e-3};
    enum { N_STEPS = sizeof(steps) / sizeof(steps[0]) };
    double num[N_STEPS], best = INFINITY;
    for (size_t s = 0; s < N_STEPS; s++) {
        double eps = steps[s];
        for (size_t i = 0; i < n; i++) x[i] = x0[i] + (float)(eps * d[i]);
        double lp = loss(ctx);
        for (size_t i = 0; i < n; i++) x[i] = x0[i] - (float)(eps * d[i]);
        double lm = loss(ctx);
        num[s] = (lp - lm) / (2.0 * eps);
    }
    // every central difference, and Richardson's (4 D(h/2) - D(h)) / 3 where a step halves the
    // one before, which cancels the difference's h^2 error term: both tend to the derivative,
    // so a wrong gradient stays as far off while a curved loss no longer needs a step so small
    // that float rounding takes over
    for (size_t s = 0; s < N_STEPS; s++) {
        double est[2] = {num[s], s > 0 && steps[s - 1] == 2 * steps[s] ? (4 * num[s] - num[s - 1]) / 3 : num[s]};
        for (int k = 0; k < 2; k++) {
            double rel = fabs(est[k] - ana) / fmax(fmax(fabs(est[k]), fabs(ana)), 1e-12);
            if (rel < best) best = rel;
        }
    }
    memcpy(x, x0, n * sizeof(float));
    xfree(x0);
    xfree(d);
    if (analytic) *analytic = ana;
    return best;
}

const char *reformer_bin(void) {
    const char *b = getenv("REFORMER_BIN");
    return b ? b : "./reformer";
}

// Runs a shell command, captures stdout and stderr together, returns the exit code.
int run_cmd(char *out, size_t cap, const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof(full), "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    size_t n = 0;
    if (out) out[0] = '\0';
    char buf[4096];
    size_t got;
    while (p && (got = fread(buf, 1, sizeof(buf), p)) > 0)
        if (out && n + got < cap) {
            memcpy(out + n, buf, got);
            n += got;
            out[n] = '\0';
        }
    int st = p ? pclose(p) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void write_text_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

ReformerConfig test_tiny_config(int kind, int causal, int layers) {
    ReformerConfig c;
    reformer_config_default(&c);
    c.vocab = 11;
    c.d_model = 12;
    c.d_ff = 20;
    c.n_heads = 2;
    c.d_head = 6;
    c.n_layers = layers;
    for (int l = 0; l < layers; l++) c.attn[l] = kind;
    if (kind < 0)  // mixed: the paper's enwik8 pattern
        for (int l = 0; l < layers; l++) c.attn[l] = l % 4 == 2 ? ATTN_LSH : l % 2 ? ATTN_FULL : ATTN_LOCAL;
    c.n_hashes = 2;
    c.lsh_chunk = 8;
    c.local_chunk = 8;
    c.axial_shape[0] = 4;
    c.axial_shape[1] = 8;
    c.axial_dims[0] = 4;
    c.axial_dims[1] = 8;
    c.causal = causal;
    c.ffn_chunk = 12;
    c.head_chunk = 10;
    c.init_std = 0.3f;  // larger than 0.02 so attention is not near uniform
    return c;
}
