// attention.c: wires LayerNorm, projections and the per-head attention cores.
// Heads are processed one at a time so per-head buffers are (T, HS), not (T, NH*HS).
#include "attention.h"

#include "common.h"
#include "gemm.h"
#include "layernorm.h"
#include "linear.h"
#include "profile.h"
#include "rng.h"

const char *const attention_names[] = {"lsh", "local", "full", NULL};

enum { SITE_PROBS = 11, SITE_HIDDEN = 12 };

static size_t head_scratch_floats(const AttnShape *s) {
    return s->kind == ATTN_LOCAL ? local_scratch_floats(&s->local) : lsh_scratch_floats(&s->lsh);
}

// Per-head (T, HS) buffers: q, v, out, g, and for local attention also its separate keys k
// and the gradients dq, dk, dv. LSH and full attention write their gradients over q and v
// (lsh_attention_backward reads them first), 512 bytes a token less.
static size_t head_buffers(const AttnShape *s) { return s->kind == ATTN_LOCAL ? 8 : 4; }

size_t attention_order_ints(const AttnShape *s) { return (size_t)s->NH * s->lsh.n_hashes * s->T; }

// Floats of the LayerNorm output h: (T, C) fp32, or bf16 in half as many.
static size_t h_floats(const AttnShape *s) {
    size_t tc = (size_t)s->T * s->C;
    return s->h_bf16 ? (tc + 1) / 2 : tc;
}

size_t attention_work_floats(const AttnShape *s) {
    size_t T = s->T, tc = T * s->C, th = T * s->HS;
    return h_floats(s) + tc * (s->hidden_dropout > 0.0f ? 3 : 1) + head_buffers(s) * th + 2 * T + head_scratch_floats(s);
}

AttnWork attention_work_views(float *base, const AttnShape *s) {
    size_t T = s->T, tc = T * s->C, th = T * s->HS;
    AttnWork w;
    w.h = base;
    w.dh = w.h + h_floats(s);
    float *p = w.dh + tc;
    w.f = w.df = NULL;
    if (s->hidden_dropout > 0.0f) {
        w.f = p;
        w.df = p + tc;
        p += 2 * tc;
    }
    w.q = p;
    w.v = w.q + th;
    w.out = w.v + th;
    w.g = w.out + th;
    if (s->kind == ATTN_LOCAL) {
        w.k = w.g + th;
        w.dq = w.k + th;  // dq, dk, dv adjacent: zeroed at once
        w.dk = w.dq + th;
        w.dv = w.dk + th;
    } else {
        w.k = w.dk = NULL;
        w.dq = w.q;
        w.dv = w.v;
    }
    w.mean = w.q + head_buffers(s) * th;
    w.rstd = w.mean + T;
    w.head = w.rstd + T;
    return w;
}

// h = LN(x2) in w->h. In bf16 precision h is rounded to bf16 there once (returned; every product
// that reads h would round it the same way), by way of dh, which is free until the backward
// accumulates into it.
static const uint16_t *layernorm_h(const AttnWork *w, const float *x2, const AttnParams *p, const AttnShape *s) {
    int bf16 = gemm_precision() == PRECISION_BF16;
    CHECK(bf16 || !s->h_bf16, "a model planned in bf16 runs in fp32");
    if (!bf16) {
        layernorm_forward(w->h, w->mean, w->rstd, x2, p->ln_w, p->ln_b, s->T, s->C, s->eps);
        return NULL;
    }
    uint16_t *h16 = (uint16_t *)w->h;
    layernorm_forward_bf16(h16, w->dh, w->mean, w->rstd, x2, p->ln_w, p->ln_b, s->T, s->C, s->eps);
    return h16;
}

// out = h W^T for a head's rows of a projection weight (h as layernorm_h left it).
static void projection(float *out, const AttnWork *w, const uint16_t *h16, const float *weight, const AttnShape *s) {
    if (h16) linear_forward_bf16(out, h16, weight, NULL, s->T, s->C, s->HS);
    else linear_forward(out, w->h, weight, NULL, s->T, s->C, s->HS, 0.0f);
}

// forward: out = h W^T, so dW += dout^T h and dh += dout W.
static void projection_backward(float *dweight, const float *dout, const AttnWork *w, const uint16_t *h16,
                                const float *weight, const AttnShape *s) {
    if (h16) linear_backward_bf16(w->dh, dweight, NULL, dout, h16, weight, s->T, s->C, s->HS);
    else linear_backward(w->dh, dweight, NULL, dout, w->h, weight, s->T, s->C, s->HS);
}

// Head hd's projections: q (and k for local) and v, each (T, HS) = h (T, C) @ W_hd^T.
static void project_head(const AttnWork *w, const uint16_t *h16, const AttnParams *p, const AttnShape *s, int hd) {
    size_t rows = (size_t)hd * s->HS * s->C;  // head hd's rows of a (NH*HS, C) weight
    projection(w->q, w, h16, p->qk + rows, s);
    if (s->kind == ATTN_LOCAL) projection(w->k, w, h16, p->k + rows, s);
    projection(w->v, w, h16, p->v + rows, s);
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

static int *head_order(int *sorted, const AttnShape *s, int hd) {
    if (s->kind != ATTN_LSH || s->lsh.plain) return NULL;
    return sorted + (size_t)hd * s->lsh.n_hashes * s->T;
}

// Head hd's columns of the output projection Wo (C, NH*HS): a (C, HS) block, rows NH*HS apart.
static const float *wo_head(const float *wo, const AttnShape *s, int hd) { return wo + (size_t)hd * s->HS; }

// dst (T, C) += sign * mask * src, or += sign * src without hidden dropout
static void add_masked(float *dst, const float *src, float sign, const AttnShape *s, uint64_t stream) {
    size_t n = (size_t)s->T * s->C;
    uint64_t st = hash_mix(stream ^ SITE_HIDDEN);
    #pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) dst[i] += sign * src[i] * dropout_factor(st, i, s->hidden_dropout);
}

// ---- kept activations ----
// A layer that keeps its activations (train.memory_mb) stores, per sequence, what its
// backward would otherwise recompute: the LayerNorm output and statistics, each head's
// projections and its core's kept state. Layout: h (T, C), mean (T), rstd (T), then per
// head q, [k], v (T, HS) and the core's floats.

static size_t core_keep_floats(const AttnShape *s) {
    return s->kind == ATTN_LOCAL ? local_keep_floats(&s->local) : lsh_keep_floats(&s->lsh);
}

static size_t head_keep_floats(const AttnShape *s) {
    return (s->kind == ATTN_LOCAL ? 3 : 2) * (size_t)s->T * s->HS + core_keep_floats(s);
}

size_t attention_keep_floats(const AttnShape *s) {
    return (size_t)s->T * (s->C + 2) + s->NH * head_keep_floats(s);
}

// The work views with the LayerNorm output and statistics in keep (no change without it).
static AttnWork keep_views(const AttnWork *work, float *keep, const AttnShape *s) {
    AttnWork w = *work;
    if (keep) {
        w.h = keep;
        w.mean = keep + (size_t)s->T * s->C;
        w.rstd = w.mean + s->T;
    }
    return w;
}

// Points head hd's projections at their place in keep and returns its core's kept floats;
// without keep, the shared per-head buffers stay and the core keeps nothing (NULL).
static float *keep_head(AttnWork *w, float *keep, const AttnShape *s, int hd) {
    if (!keep) return NULL;
    size_t th = (size_t)s->T * s->HS;
    float *p = keep + (size_t)s->T * (s->C + 2) + hd * head_keep_floats(s);
    w->q = p;
    p += th;
    if (s->kind == ATTN_LOCAL) {
        w->k = p;
        p += th;
    } else {
        w->dq = w->q;  // LSH and full attention write their gradients over q and v
    }
    w->v = p;
    if (s->kind != ATTN_LOCAL) w->dv = w->v;
    return p + th;
}

void attention_forward(float *y1, const BucketOrder *buckets, const float *x2,
                       const AttnParams *p, const AttnShape *s, uint64_t stream, AttnWork *work,
                       float *keep) {
    int D = s->NH * s->HS, drop = s->hidden_dropout > 0.0f;
    AttnWork w = keep_views(work, keep, s);
    const uint16_t *h16 = layernorm_h(&w, x2, p, s);
    for (int hd = 0; hd < s->NH; hd++) {
        float *core = keep_head(&w, keep, s, hd);
        project_head(&w, h16, p, s, hd);
        double t0 = now_seconds();
        if (s->kind == ATTN_LOCAL) {
            LocalShape l = local_shape(s, stream, hd);
            local_attention_forward(w.out, w.q, w.k, w.v, s->HS, &l, w.head, core);
        } else {
            LshShape l = lsh_shape(s, stream, hd);
            int *order = head_order(buckets->order, s, hd);
            if (order && buckets->hash) {
                double th = now_seconds();
                lsh_hash(order, w.q, s->HS, buckets->rot + (size_t)hd * s->HS * l.n_hashes * lsh_rotation_cols(&l.buckets),
                         &l, w.head);
                profile_add_to(&profile_hash_seconds, th);
            }
            lsh_attention_forward(w.out, order, w.q, w.v, s->HS, &l, w.head, core);
        }
        profile_add(PROFILE_ATTN_CORE, t0);
        // forward: F = drop(sum_hd out_hd Wo_hd^T); without dropout it lands in y1 directly
        linear_forward_ld(drop ? w.f : y1, w.out, wo_head(p->o, s, hd), D, s->T, s->HS, s->C, 1.0f,
                          drop && hd == 0 ? 0.0f : 1.0f);
    }
    if (drop) add_masked(y1, w.f, 1.0f, s, stream);
}

void attention_backward(float *dx2, AttnParams *grad, float *y1, const float *dy1,
                        const int *sorted, const float *x2, const AttnParams *p,
                        const AttnShape *s, uint64_t stream, AttnWork *work, float *kept) {
    int T = s->T, C = s->C, HS = s->HS, D = s->NH * s->HS, drop = s->hidden_dropout > 0.0f;
    size_t n = (size_t)T * C;
    AttnWork w = keep_views(work, kept, s);
    // h as layernorm_h leaves it (kept: as the forward left it)
    const uint16_t *h16 = kept ? (gemm_precision() == PRECISION_BF16 ? (const uint16_t *)w.h : NULL)
                               : layernorm_h(&w, x2, p, s);
    // forward: F = drop(f), so df = dy1 * mask
    const float *df = dy1;
    if (drop) {
        zero_floats(w.df, n);
        add_masked(w.df, dy1, 1.0f, s, stream);
        df = w.df;
        if (y1) zero_floats(w.f, n);
    }
    zero_floats(w.dh, n);
    for (int hd = 0; hd < s->NH; hd++) {
        size_t rows = (size_t)hd * HS * C;
        const float *wo = wo_head(p->o, s, hd);
        float *core = keep_head(&w, kept, s, hd);
        if (!kept) project_head(&w, h16, p, s, hd);
        // forward: f += out Wo_hd^T, so g = d(out) = df Wo_hd
        linear_input_grad(w.g, df, wo, D, T, HS, C);
        // the core's backward recomputes its forward (or reads what it kept) and hands back out
        double t0 = now_seconds();
        if (s->kind == ATTN_LOCAL) {
            LocalShape l = local_shape(s, stream, hd);
            zero_floats(w.dq, 3 * (size_t)T * HS);  // dq, dk, dv: adjacent
            local_attention_backward(w.dq, w.dk, w.dv, w.out, w.g, w.q, w.k, w.v, HS, &l, w.head, core);
        } else {
            LshShape l = lsh_shape(s, stream, hd);
            lsh_attention_backward(w.dq, w.dv, w.out, w.g, head_order((int *)sorted, s, hd), w.q,
                                   w.v, HS, &l, w.head, core);
        }
        profile_add(PROFILE_ATTN_CORE, t0);
        // dWo_hd += df^T out
        linear_backward_ld(NULL, grad->o + (size_t)hd * HS, D, df, w.out, wo, T, HS, C);
        // reversible inverse, accumulated head by head: x1 = y1 - F(x2)
        if (y1) linear_forward_ld(drop ? w.f : y1, w.out, wo, D, T, HS, C, drop ? 1.0f : -1.0f, 1.0f);
        // forward: q = h Wq_hd^T (and k, v alike), so dW_hd += dq^T h; dh += dq W_hd
        projection_backward(grad->qk + rows, w.dq, &w, h16, p->qk + rows, s);
        if (s->kind == ATTN_LOCAL) projection_backward(grad->k + rows, w.dk, &w, h16, p->k + rows, s);
        projection_backward(grad->v + rows, w.dv, &w, h16, p->v + rows, s);
    }
    if (drop && y1) add_masked(y1, w.f, -1.0f, s, stream);
    // forward: h = LN(x2)
    layernorm_backward(dx2, grad->ln_w, grad->ln_b, w.dh, x2, w.mean, w.rstd, p->ln_w, T, C);
}
