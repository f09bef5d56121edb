// test_embedding.c and the LM head: gradients against central differences.
#include <math.h>
#include <string.h>

#include "../core/common.h"
#include "../core/embedding.h"
#include "../core/lm_head.h"
#include "test.h"

typedef struct {
    EmbedShape s;
    int *tok;
    float *wte, *p0, *p1, *out, *w;
} ECtx;

static double embed_loss(void *p) {
    ECtx *c = p;
    embedding_forward(c->out, c->tok, c->wte, c->p0, c->p1, &c->s);
    return dot_loss(c->w, c->out, (size_t)c->s.T * c->s.C);
}

void test_embedding_grad(void) {
    ECtx c;
    c.s = (EmbedShape){12, 10, 7, {3, 4}, {4, 6}, 0.2f, 3, 0};
    c.tok = xmalloc(12 * sizeof(int));
    for (int t = 0; t < 12; t++) c.tok[t] = (t * 5) % 7;  // repeated tokens share rows
    c.wte = xmalloc(70 * 4);
    c.p0 = xmalloc(12 * 4);
    c.p1 = xmalloc(24 * 4);
    c.out = xmalloc(120 * 4);
    c.w = xmalloc(120 * 4);
    fill_normal(c.wte, 70, 1, 1);
    fill_normal(c.p0, 12, 1, 2);
    fill_normal(c.p1, 24, 1, 3);
    fill_normal(c.w, 120, 1, 4);
    float *g = xcalloc(70, 4), *g0 = xcalloc(12, 4), *g1 = xcalloc(24, 4);
    embedding_backward(g, g0, g1, c.w, c.tok, &c.s);
    double ana, rel = gradcheck(embed_loss, &c, c.wte, g, 70, 5, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "dwte rel %.2e", rel);
    rel = gradcheck(embed_loss, &c, c.p0, g0, 12, 6, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "dpos0 rel %.2e", rel);
    rel = gradcheck(embed_loss, &c, c.p1, g1, 24, 7, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "dpos1 rel %.2e", rel);
    // axial layout: position t = i * A1 + j is concat(pos0[i], pos1[j])
    EmbedShape s = c.s;
    s.dropout = 0;
    embedding_forward(c.out, c.tok, c.wte, c.p0, c.p1, &s);
    int t = 7, i = t / 4, j = t % 4;
    EXPECT(c.out[t * 10 + 1] == c.wte[c.tok[t] * 10 + 1] + c.p0[i * 4 + 1], "axial first factor");
    EXPECT(c.out[t * 10 + 5] == c.wte[c.tok[t] * 10 + 5] + c.p1[j * 6 + 1], "axial second factor");
}

typedef struct {
    HeadShape s;
    HeadParams p;
    int *tok;
    float *y1, *y2, *scratch;
} HCtx;

static double head_loss(void *p) {
    HCtx *c = p;
    return lm_head_forward(NULL, NULL, c->y1, c->y2, c->tok, &c->p, &c->s, c->scratch);
}

void test_lm_head_grad(void) {
    HCtx c;
    int T = 11, C = 6, V = 9;
    c.s = (HeadShape){T, C, V, 4, 0, 0, 1e-12f, 0.1f, 8, 0, 1};
    c.tok = xmalloc(T * sizeof(int));
    for (int t = 0; t < T; t++) c.tok[t] = (t * 7 + 3) % V;
    c.tok[5] = -1;  // an unlabelled position is skipped
    float *all = xmalloc((4 * C + 2 * V * C + V + 2 * T * C) * 4);
    fill_normal(all, 4 * C + 2 * V * C + V + 2 * T * C, 1, 1);
    c.p.ln_w = all;
    c.p.ln_b = all + 2 * C;
    c.p.w = all + 4 * C;
    c.p.b = c.p.w + 2 * V * C;
    c.y1 = c.p.b + V;
    c.y2 = c.y1 + T * C;
    c.scratch = xmalloc(lm_head_scratch_floats(&c.s) * 4);
    float *dall = xcalloc(4 * C + 2 * V * C + V + 2 * T * C, 4);
    HeadParams g = {dall, dall + 2 * C, dall + 4 * C, dall + 4 * C + 2 * V * C};
    float *dy1 = dall + 4 * C + 2 * V * C + V, *dy2 = dy1 + T * C;
    lm_head_backward(dy1, dy2, &g, 1.0f, c.y1, c.y2, c.tok, &c.p, &c.s, c.scratch);
    struct { float *x, *g; size_t n; const char *name; } t[] = {
        {c.p.ln_w, g.ln_w, 2 * C, "ln_w"}, {c.p.ln_b, g.ln_b, 2 * C, "ln_b"},
        {c.p.w, g.w, 2 * V * C, "w"}, {c.p.b, g.b, V, "b"}, {c.y1, dy1, T * C, "y1"}, {c.y2, dy2, T * C, "y2"}};
    for (int i = 0; i < 6; i++) {
        double ana, rel = gradcheck(head_loss, &c, t[i].x, t[i].g, t[i].n, 20 + i, &ana);
        EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "d%s rel %.2e", t[i].name, rel);
    }
    // uniform logits give exactly log V per label
    memset(c.p.w, 0, 2 * V * C * 4);
    memset(c.p.b, 0, V * 4);
    double nll = lm_head_forward(NULL, NULL, c.y1, c.y2, c.tok, &c.p, &c.s, c.scratch);
    EXPECT(fabs(nll / 9 - log(V)) < 1e-6, "uniform model: %.6f per label, want %.6f", nll / 9, log(V));
}
