// test_ffn.c: the chunked feed-forward block, its gradients and its inverse use.
#include <math.h>
#include <string.h>

#include "../core/common.h"
#include "../core/ffn.h"
#include "test.h"

typedef struct {
    FfnParams w;
    FfnShape s;
    float *x, *out, *proj, *scratch;
    size_t N;
} Ctx;

static double ffn_loss(void *p) {
    Ctx *c = p;
    memset(c->out, 0, c->N * c->s.C * 4);
    ffn_forward(c->out, c->x, &c->w, c->N, &c->s, c->scratch, NULL);
    return dot_loss(c->proj, c->out, c->N * c->s.C);
}

static float *param(size_t n, float std, uint64_t seed) {
    float *p = xmalloc(n * 4);
    fill_normal(p, n, std, seed);
    return p;
}

static void check_ffn(int act, float dropout, int chunk) {
    Ctx c;
    memset(&c, 0, sizeof(c));
    c.N = 23;
    int C = 12, F = 20;
    c.s = (FfnShape){C, F, act, chunk, 1e-12f, dropout, 77};
    c.w.ln_w = param(C, 1.0f, 1);
    c.w.ln_b = param(C, 0.5f, 2);
    c.w.w1 = param(F * C, 0.4f, 3);
    c.w.b1 = param(F, 0.5f, 4);
    c.w.w2 = param(C * F, 0.4f, 5);
    c.w.b2 = param(C, 0.5f, 6);
    c.x = param(c.N * C, 1.0f, 7);
    c.proj = param(c.N * C, 1.0f, 8);
    c.out = xmalloc(c.N * C * 4);
    c.scratch = xmalloc(ffn_scratch_floats(&c.s) * 4);
    FfnParams g = {xcalloc(C, 4), xcalloc(C, 4), xcalloc(F * C, 4), xcalloc(F, 4), xcalloc(C * F, 4), xcalloc(C, 4)};
    float *dx = xcalloc(c.N * C, 4);
    // y = x_other + G(x); backward must also give x_other back from y
    float *y = param(c.N * C, 1.0f, 9), *y0 = xmalloc(c.N * C * 4);
    memcpy(y0, y, c.N * C * 4);
    ffn_forward(y, c.x, &c.w, c.N, &c.s, c.scratch, NULL);
    ffn_backward(dx, &g, y, c.proj, c.x, &c.w, c.N, &c.s, c.scratch, NULL);
    EXPECT(max_rel_diff(y, y0, c.N * C) < 1e-5, "inverse y - G(x) differs by %.2e",
           max_rel_diff(y, y0, c.N * C));
    struct { float *x, *g; size_t n; const char *name; } t[] = {
        {c.x, dx, c.N * C, "x"}, {c.w.ln_w, g.ln_w, C, "ln_w"}, {c.w.ln_b, g.ln_b, C, "ln_b"},
        {c.w.w1, g.w1, F * C, "w1"}, {c.w.b1, g.b1, F, "b1"}, {c.w.w2, g.w2, C * F, "w2"},
        {c.w.b2, g.b2, C, "b2"}};
    for (int i = 0; i < 7; i++) {
        double ana, rel = gradcheck(ffn_loss, &c, t[i].x, t[i].g, t[i].n, 100 + i, &ana);
        EXPECT(rel < 1e-3 && fabs(ana) > 1e-4, "act %d dropout %.1f d%s rel %.2e (g.d %.2e)", act,
               dropout, t[i].name, rel, ana);
    }
}

void test_ffn_grad_gelu(void) { check_ffn(ACT_GELU, 0.0f, 5); }
void test_ffn_grad_relu(void) { check_ffn(ACT_RELU, 0.0f, 23); }
void test_ffn_grad_dropout(void) { check_ffn(ACT_GELU, 0.3f, 8); }

void test_ffn_chunking_invariant(void) {
    // the chunk length changes memory, never the result
    int C = 8, F = 16;
    size_t N = 37;
    FfnParams w = {param(C, 1, 1), param(C, 1, 2), param(F * C, 0.3f, 3), param(F, 1, 4),
                   param(C * F, 0.3f, 5), param(C, 1, 6)};
    float *x = param(N * C, 1, 7), *a = xcalloc(N * C, 4), *b = xcalloc(N * C, 4);
    FfnShape s1 = {C, F, ACT_GELU, 37, 1e-12f, 0.2f, 5}, s2 = s1;
    s2.chunk = 4;
    float *k1 = xmalloc(ffn_scratch_floats(&s1) * 4), *k2 = xmalloc(ffn_scratch_floats(&s2) * 4);
    ffn_forward(a, x, &w, N, &s1, k1, NULL);
    ffn_forward(b, x, &w, N, &s2, k2, NULL);
    EXPECT(max_rel_diff(a, b, N * C) < 1e-6, "chunk 37 vs 4 differ by %.2e", max_rel_diff(a, b, N * C));
}
