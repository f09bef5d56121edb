// test_attention_local.c: local attention gradients.
#include <math.h>
#include <string.h>

#include "../core/attention_local.h"
#include "../core/common.h"
#include "test.h"

typedef struct {
    LocalShape s;
    float *q, *k, *v, *out, *w, *scratch;
} Ctx;

static double local_loss(void *p) {
    Ctx *c = p;
    local_attention_forward(c->out, c->q, c->k, c->v, c->s.HS, &c->s, c->scratch, NULL);
    return dot_loss(c->w, c->out, (size_t)c->s.T * c->s.HS);
}

static void check(LocalShape s, const char *what) {
    Ctx c;
    c.s = s;
    size_t n = (size_t)s.T * s.HS;
    c.q = xmalloc(n * 4);
    c.k = xmalloc(n * 4);
    c.v = xmalloc(n * 4);
    c.out = xmalloc(n * 4);
    c.w = xmalloc(n * 4);
    c.scratch = xmalloc(local_scratch_floats(&s) * 4);
    fill_normal(c.q, n, 1, 1);
    fill_normal(c.k, n, 1, 2);
    fill_normal(c.v, n, 1, 3);
    fill_normal(c.w, n, 1, 4);
    float *dq = xcalloc(n, 4), *dk = xcalloc(n, 4), *dv = xcalloc(n, 4);
    local_attention_backward(dq, dk, dv, NULL, c.w, c.q, c.k, c.v, s.HS, &s, c.scratch, NULL);
    float *x[3] = {c.q, c.k, c.v}, *g[3] = {dq, dk, dv};
    for (int i = 0; i < 3; i++) {
        double ana, rel = gradcheck(local_loss, &c, x[i], g[i], n, 10 + i, &ana);
        EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "%s: grad %d rel %.2e", what, i, rel);
    }
}

void test_local_grad(void) {
    check((LocalShape){32, 8, {8, 1, 0, 1, 0}, 0.0f, 0}, "causal");
    check((LocalShape){32, 8, {8, 1, 1, 0, 0}, 0.0f, 0}, "bidirectional");
    check((LocalShape){12, 4, {16, 1, 0, 1, 0}, 0.0f, 0}, "plain");
    check((LocalShape){30, 6, {10, 2, 0, 1, 0}, 0.3f, 9}, "dropout");
}
