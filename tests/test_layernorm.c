// test_layernorm.c: LayerNorm and dense layers against central differences.
#include <math.h>
#include <string.h>

#include "../core/common.h"
#include "../core/layernorm.h"
#include "../core/linear.h"
#include "test.h"

typedef struct {
    float *out, *x, *w, *b, *proj;
    size_t N;
    int C, OC;
} Ctx;

static double ln_loss(void *p) {
    Ctx *c = p;
    layernorm_forward(c->out, NULL, NULL, c->x, c->w, c->b, c->N, c->C, 1e-12f);
    return dot_loss(c->proj, c->out, c->N * c->C);
}

void test_layernorm_grad(void) {
    Ctx c = {0};
    c.N = 7;
    c.C = 13;
    size_t n = c.N * c.C;
    c.out = xmalloc(n * 4);
    c.x = xmalloc(n * 4);
    c.w = xmalloc(c.C * 4);
    c.b = xmalloc(c.C * 4);
    c.proj = xmalloc(n * 4);
    fill_normal(c.x, n, 1.0f, 1);
    for (size_t i = 0; i < n; i++) c.x[i] += 3.0f;  // a large mean must not hurt
    fill_normal(c.w, c.C, 1.0f, 2);
    fill_normal(c.b, c.C, 1.0f, 3);
    fill_normal(c.proj, n, 1.0f, 4);
    float *mean = xmalloc(c.N * 4), *rstd = xmalloc(c.N * 4);
    float *dx = xcalloc(n, 4), *dw = xcalloc(c.C, 4), *db = xcalloc(c.C, 4);
    layernorm_forward(c.out, mean, rstd, c.x, c.w, c.b, c.N, c.C, 1e-12f);
    layernorm_backward(dx, dw, db, c.proj, c.x, mean, rstd, c.w, c.N, c.C);
    double ana, rel;
    rel = gradcheck(ln_loss, &c, c.x, dx, n, 10, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "dx rel %.2e (g.d %.3e)", rel, ana);
    rel = gradcheck(ln_loss, &c, c.w, dw, c.C, 11, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "dweight rel %.2e", rel);
    rel = gradcheck(ln_loss, &c, c.b, db, c.C, 12, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "dbias rel %.2e", rel);
}

static double linear_loss(void *p) {
    Ctx *c = p;
    linear_forward(c->out, c->x, c->w, c->b, c->N, c->C, c->OC, 0.0f);
    return dot_loss(c->proj, c->out, c->N * c->OC);
}

void test_linear_grad(void) {
    // N large enough that the rows split across threads, odd sizes everywhere
    Ctx c = {0};
    c.N = 133;
    c.C = 17;
    c.OC = 11;
    c.out = xmalloc(c.N * c.OC * 4);
    c.x = xmalloc(c.N * c.C * 4);
    c.w = xmalloc(c.OC * c.C * 4);
    c.b = xmalloc(c.OC * 4);
    c.proj = xmalloc(c.N * c.OC * 4);
    fill_normal(c.x, c.N * c.C, 1.0f, 1);
    fill_normal(c.w, c.OC * c.C, 0.3f, 2);
    fill_normal(c.b, c.OC, 1.0f, 3);
    fill_normal(c.proj, c.N * c.OC, 1.0f, 4);
    float *dx = xcalloc(c.N * c.C, 4), *dw = xcalloc(c.OC * c.C, 4), *db = xcalloc(c.OC, 4);
    linear_backward(dx, dw, db, c.proj, c.x, c.w, c.N, c.C, c.OC);
    double ana, rel;
    rel = gradcheck(linear_loss, &c, c.x, dx, c.N * c.C, 5, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "dx rel %.2e", rel);
    rel = gradcheck(linear_loss, &c, c.w, dw, c.OC * c.C, 6, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "dweight rel %.2e", rel);
    rel = gradcheck(linear_loss, &c, c.b, db, c.OC, 7, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "dbias rel %.2e", rel);
    // the threaded split against one plain sgemm call per row
    float *ref = xmalloc(c.N * c.OC * 4);
    for (size_t i = 0; i < c.N; i++)
        for (int o = 0; o < c.OC; o++) {
            double s = c.b[o];
            for (int k = 0; k < c.C; k++) s += (double)c.x[i * c.C + k] * c.w[o * c.C + k];
            ref[i * c.OC + o] = (float)s;
        }
    linear_forward(c.out, c.x, c.w, c.b, c.N, c.C, c.OC, 0.0f);
    EXPECT(max_rel_diff(c.out, ref, c.N * c.OC) < 1e-5, "forward differs from reference");
}
