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

// The 2-D tile split of core/linear.c at team sizes that pick row bands, column groups and
// both (1, 2, 3, 6, 16 threads; 16 over-subscribes this machine, which only costs time):
// forward, dinp and dW against sums in double, for a feed-forward-like and a per-head shape.
void test_linear_tiles_any_team(void) {
    int shapes[2][3] = {{300, 48, 130}, {520, 70, 12}};  // N, IC, OC
    int teams[5] = {1, 2, 3, 6, 16};
    for (int sh = 0; sh < 2; sh++) {
        size_t N = shapes[sh][0];
        int IC = shapes[sh][1], OC = shapes[sh][2];
        float *x = xmalloc(N * IC * 4), *w = xmalloc((size_t)OC * IC * 4), *g = xmalloc(N * OC * 4);
        float *out = xmalloc(N * OC * 4), *dx = xmalloc(N * IC * 4), *dw = xmalloc((size_t)OC * IC * 4);
        float *rout = xmalloc(N * OC * 4), *rdx = xmalloc(N * IC * 4), *rdw = xmalloc((size_t)OC * IC * 4);
        fill_normal(x, N * IC, 1.0f, 11);
        fill_normal(w, (size_t)OC * IC, 0.3f, 12);
        fill_normal(g, N * OC, 1.0f, 13);
        for (size_t n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double s = 0;
                for (int i = 0; i < IC; i++) s += (double)x[n * IC + i] * w[(size_t)o * IC + i];
                rout[n * OC + o] = (float)s;
            }
        for (size_t n = 0; n < N; n++)
            for (int i = 0; i < IC; i++) {
                double s = 0;
                for (int o = 0; o < OC; o++) s += (double)g[n * OC + o] * w[(size_t)o * IC + i];
                rdx[n * IC + i] = (float)s;
            }
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < IC; i++) {
                double s = 0;
                for (size_t n = 0; n < N; n++) s += (double)g[n * OC + o] * x[n * IC + i];
                rdw[(size_t)o * IC + i] = (float)s;
            }
        for (int t = 0; t < 5; t++) {
            threads_set(teams[t]);
            memset(dx, 0, N * IC * 4);
            memset(dw, 0, (size_t)OC * IC * 4);
            linear_forward(out, x, w, NULL, N, IC, OC, 0.0f);
            linear_backward(dx, dw, NULL, g, x, w, N, IC, OC);
            EXPECT(max_rel_diff(out, rout, N * OC) < 1e-5, "shape %d, %d threads: forward", sh, teams[t]);
            EXPECT(max_rel_diff(dx, rdx, N * IC) < 1e-5, "shape %d, %d threads: dinp", sh, teams[t]);
            EXPECT(max_rel_diff(dw, rdw, (size_t)OC * IC) < 1e-4, "shape %d, %d threads: dW", sh, teams[t]);
        }
        threads_set(2);
        float *bufs[] = {x, w, g, out, dx, dw, rout, rdx, rdw};
        for (int i = 0; i < 9; i++) xfree(bufs[i]);
    }
}
