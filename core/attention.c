// attention.c: wires LayerNorm, projections and the per-head attention cores.
// Heads are processed one at a time so per-head buffers are (T, HS), not (T, NH*HS).
#include "attention.h"

#include <string.h>

#include "common.h"
#include "layernorm.h"
#include "linear.h"
#include "rng.h"

enum { SITE_PROBS = 11, SITE_HIDDEN = 12 };

static size_t head_scratch_floats(const AttnShape *s) {
    return s->kind == ATTN_LOCAL ? local_scratch_floats(&s->local) : lsh_scratch_floats(&s->lsh);
}

size_t attention_work_floats(const AttnShape *s) {
    size_t T = s->T, D = (size_t)s->NH * s->HS;
    return T * s->C * 2 + T * D + 7 * T * s->HS + 2 * T + head_scratch_floats(s);
}

AttnWork attention_work_views(float *base, const AttnShape *s) {
    size_t T = s->T, D = (size_t)s->NH * s->HS, th = T * s->HS;
    AttnWork w;
    w.h = base;
    w.ctx = w.h + T * s->C;
    w.f = w.ctx + T * D;
    w.q = w.f + T * s->C;
    w.k = w.q + th;
    w.v = w.k + th;
    w.dq = w.v + th;
    w.dk = w.dq + th;
    w.dv = w.dk + th;
    w.g = w.dv + th;
    w.mean = w.g + th;
    w.rstd = w.mean + T;
    w.head = w.rstd + T;
    return w;
}

// Head hd's projections: q (and k for local) and v, each (T, HS) = h (T, C) @ W_hd^T.
static void project_head(AttnWork *w, const AttnParams *p, const AttnShape *s, int hd) {
    size_t rows = (size_t)hd * s->HS * s->C;  // head hd's rows of a (NH*HS, C) weight
    linear_forward(w->q, w->h, p->qk + rows, NULL, s->T, s->C, s->HS, 0.0f);
    if (s->kind == ATTN_LOCAL) linear_forward(w->k, w->h, p->k + rows, NULL, s->T, s->C, s->HS, 0.0f);
    linear_forward(w->v, w->h, p->v + rows, NULL, s->T, s->C, s->HS, 0.0f);
}

static LshShape lsh_shape(const AttnShape *s, uint64_t stream, int hd) {
    LshShape l = s->lsh;
    l.stream = hash_stream(stream, SITE_PROBS, hd, 0);
    return l;
}

static LocalShape local_shape(const AttnShape *s, uint64_t stream, int hd) {
    LocalShape l = s->local;
    l.stream = hash_stream(stream, SITE_PROBS, hd, 0);
    return l;
}

static size_t sorted_len(const AttnShape *s) { return (size_t)s->lsh.n_hashes * s->T; }

// ctx (T, NH*HS) for all heads; hashes when rot is given.
static void heads_forward(AttnWork *w, int *sorted, const float *rot, const AttnParams *p,
                          const AttnShape *s, uint64_t stream) {
    size_t D = (size_t)s->NH * s->HS;
    for (int hd = 0; hd < s->NH; hd++) {
        project_head(w, p, s, hd);
        float *ctx = w->ctx + (size_t)hd * s->HS;  // (T, HS) with stride D
        if (s->kind == ATTN_LOCAL) {
            LocalShape l = local_shape(s, stream, hd);
            local_attention_forward(w->dq, w->q, w->k, w->v, s->HS, &l, w->head);
        } else {
            LshShape l = lsh_shape(s, stream, hd);
            int *order = l.plain ? NULL : sorted + hd * sorted_len(s);
            if (order && rot)
                lsh_hash(order, w->q, s->HS, rot + (size_t)hd * s->HS * l.n_hashes * lsh_rotation_cols(&l),
                         &l, w->head);
            lsh_attention_forward(w->dq, order, w->q, w->v, s->HS, &l, w->head);
        }
        for (int t = 0; t < s->T; t++)
            memcpy(ctx + t * D, w->dq + (size_t)t * s->HS, s->HS * sizeof(float));
    }
}

// f = drop(ctx Wo^T) into w->f
static void output_forward(AttnWork *w, const AttnParams *p, const AttnShape *s, uint64_t stream) {
    size_t n = (size_t)s->T * s->C;
    linear_forward(w->f, w->ctx, p->o, NULL, s->T, s->NH * s->HS, s->C, 0.0f);
    if (s->hidden_dropout > 0.0f) {
        uint64_t st = hash_mix(stream ^ SITE_HIDDEN);
        for (size_t i = 0; i < n; i++) w->f[i] *= dropout_factor(st, i, s->hidden_dropout);
    }
}

void attention_forward(float *y1, int *sorted, const float *rot, const float *x2,
                       const AttnParams *p, const AttnShape *s, uint64_t stream, AttnWork *w) {
    layernorm_forward(w->h, w->mean, w->rstd, x2, p->ln_w, p->ln_b, s->T, s->C, s->eps);
    heads_forward(w, sorted, rot, p, s, stream);
    output_forward(w, p, s, stream);
    size_t n = (size_t)s->T * s->C;
    for (size_t i = 0; i < n; i++) y1[i] += w->f[i];
}

void attention_backward(float *dx2, AttnParams *grad, float *y1, const float *dy1,
                        const int *sorted, const float *x2, const AttnParams *p,
                        const AttnShape *s, uint64_t stream, AttnWork *w) {
    size_t n = (size_t)s->T * s->C, D = (size_t)s->NH * s->HS;
    int T = s->T, C = s->C, HS = s->HS;
    layernorm_forward(w->h, w->mean, w->rstd, x2, p->ln_w, p->ln_b, T, C, s->eps);
    heads_forward(w, (int *)sorted, NULL, p, s, stream);
    if (y1) {  // reversible inverse: x1 = y1 - F(x2)
        output_forward(w, p, s, stream);
        for (size_t i = 0; i < n; i++) y1[i] -= w->f[i];
    }
    // forward: f = drop(ctx Wo^T), so df = dy1 * mask; dWo += df^T ctx; dctx = df Wo
    uint64_t st = hash_mix(stream ^ SITE_HIDDEN);
    for (size_t i = 0; i < n; i++)
        w->f[i] = s->hidden_dropout > 0.0f ? dy1[i] * dropout_factor(st, i, s->hidden_dropout) : dy1[i];
    linear_backward(NULL, grad->o, NULL, w->f, w->ctx, p->o, T, (int)D, C);
    memset(w->ctx, 0, (size_t)T * D * sizeof(float));
    linear_backward(w->ctx, NULL, NULL, w->f, NULL, p->o, T, (int)D, C);  // ctx now holds dctx
    // w->f becomes dh (T, C), the gradient at the LayerNorm output
    memset(w->f, 0, n * sizeof(float));
    for (int hd = 0; hd < s->NH; hd++) {
        size_t rows = (size_t)hd * HS * C;
        project_head(w, p, s, hd);
        const float *dctx = w->ctx + (size_t)hd * HS;  // (T, HS) with stride D
        for (int t = 0; t < T; t++) memcpy(w->g + (size_t)t * HS, dctx + t * D, HS * sizeof(float));
        memset(w->dq, 0, 3 * (size_t)T * HS * sizeof(float));
        if (s->kind == ATTN_LOCAL) {
            LocalShape l = local_shape(s, stream, hd);
            local_attention_backward(w->dq, w->dk, w->dv, w->g, w->q, w->k, w->v, HS, &l, w->head);
        } else {
            LshShape l = lsh_shape(s, stream, hd);
            const int *order = l.plain ? NULL : sorted + hd * sorted_len(s);
            lsh_attention_backward(w->dq, w->dv, w->g, order, w->q, w->v, HS, &l, w->head);
        }
        // forward: q = h Wq_hd^T (and k, v alike), so dW_hd += dq^T h; dh += dq W_hd
        linear_backward(w->f, grad->qk + rows, NULL, w->dq, w->h, p->qk + rows, T, C, HS);
        if (s->kind == ATTN_LOCAL) linear_backward(w->f, grad->k + rows, NULL, w->dk, w->h, p->k + rows, T, C, HS);
        linear_backward(w->f, grad->v + rows, NULL, w->dv, w->h, p->v + rows, T, C, HS);
    }
    // forward: h = LN(x2)
    layernorm_backward(dx2, grad->ln_w, grad->ln_b, w->f, x2, w->mean, w->rstd, p->ln_w, T, C);
}
