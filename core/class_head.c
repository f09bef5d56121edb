// class_head.c: the pooled row is formed one position at a time (LayerNorm is per position), so
// mean pooling over 64K positions needs no (T, 2C) buffer.
#include "class_head.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "layernorm.h"
#include "linear.h"
#include "rng.h"

const char *const pooling_names[] = {"first", "mean", "ends", NULL};

// Dropout sites: the hidden dropout of each row, then the classifier's two.
enum { SITE_ROWS = 0, SITE_POOLED = 1, SITE_HIDDEN = 2 };

typedef struct {
    float *cat, *h;     // (2C) one position's concat(y1, y2) and its normalised form
    float *u, *ud;      // (2C) the pooled row, and with dropout
    float *a, *ad;      // (C) tanh(dense), and with dropout
    float *z;           // (K) logits; in backward, dz
    float *du, *dh;     // (2C), (2C)
    float *da;          // (C)
} Views;

size_t class_head_scratch_floats(const ClassHeadShape *s) { return 15 * (size_t)s->C + s->K; }

static Views views(float *base, const ClassHeadShape *s) {
    size_t c2 = 2 * (size_t)s->C, c = s->C;
    Views v;
    v.cat = base;
    v.h = v.cat + c2;
    v.u = v.h + c2;
    v.ud = v.u + c2;
    v.du = v.ud + c2;
    v.dh = v.du + c2;
    v.a = v.dh + c2;
    v.ad = v.a + c;
    v.da = v.ad + c;
    v.z = v.da + c;
    return v;
}

static int real_length(const ClassHeadShape *s) { return s->valid > 0 && s->valid < s->T ? s->valid : s->T; }

// How many positions the pooled row averages, and the i-th of them.
static int pooled_count(const ClassHeadShape *s) {
    if (s->pooling == POOL_FIRST) return 1;
    if (s->pooling == POOL_ENDS) return real_length(s) > 1 ? 2 : 1;
    return real_length(s);
}

static int pooled_position(const ClassHeadShape *s, int i) {
    return s->pooling == POOL_ENDS && i == 1 ? real_length(s) - 1 : i;
}

static void drop(float *x, size_t n, const ClassHeadShape *s, int site, size_t at) {
    if (s->dropout <= 0.0f) return;
    uint64_t st = hash_stream(s->stream, site, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] *= dropout_factor(st, at + i, s->dropout);
}

// Position t's row: h = drop(LN(concat(y1_t, y2_t))), with its statistics.
static void row_forward(Views *v, float *mean, float *rstd, const float *y1, const float *y2, int t,
                        const ClassHeadParams *p, const ClassHeadShape *s) {
    int C = s->C;
    memcpy(v->cat, y1 + (size_t)t * C, C * sizeof(float));
    memcpy(v->cat + C, y2 + (size_t)t * C, C * sizeof(float));
    layernorm_forward(v->h, mean, rstd, v->cat, p->ln_w, p->ln_b, 1, 2 * C, s->eps);
    drop(v->h, 2 * (size_t)C, s, SITE_ROWS, (size_t)t * 2 * C);
}

// u, ud, a, ad, z of the forward.
static void pooled_forward(Views *v, const float *y1, const float *y2, const ClassHeadParams *p,
                           const ClassHeadShape *s) {
    int C2 = 2 * s->C, n = pooled_count(s);
    float mean, rstd;
    memset(v->u, 0, C2 * sizeof(float));
    for (int i = 0; i < n; i++) {
        row_forward(v, &mean, &rstd, y1, y2, pooled_position(s, i), p, s);
        for (int j = 0; j < C2; j++) v->u[j] += v->h[j];
    }
    for (int j = 0; j < C2; j++) v->u[j] /= (float)n;
    memcpy(v->ud, v->u, C2 * sizeof(float));
    drop(v->ud, C2, s, SITE_POOLED, 0);
    linear_forward(v->a, v->ud, p->dense_w, p->dense_b, 1, C2, s->C, 0.0f);
    for (int j = 0; j < s->C; j++) v->a[j] = tanhf(v->a[j]);
    memcpy(v->ad, v->a, s->C * sizeof(float));
    drop(v->ad, s->C, s, SITE_HIDDEN, 0);
    linear_forward(v->z, v->ad, p->out_w, p->out_b, 1, s->C, s->K, 0.0f);
}

double class_head_forward(float *logits, int *pred, const float *y1, const float *y2, int label,
                          const ClassHeadParams *p, const ClassHeadShape *s, float *scratch) {
    Views v = views(scratch, s);
    pooled_forward(&v, y1, y2, p, s);
    if (logits) memcpy(logits, v.z, s->K * sizeof(float));
    int arg = 0;
    for (int k = 1; k < s->K; k++)
        if (v.z[k] > v.z[arg]) arg = k;
    if (pred) *pred = arg;
    if (label < 0) return 0.0;
    double sum = 0.0;
    for (int k = 0; k < s->K; k++) sum += exp((double)v.z[k] - v.z[arg]);
    return v.z[arg] + log(sum) - v.z[label];
}

void class_head_backward(float *dy1, float *dy2, ClassHeadParams *grad, float scale, const float *y1,
                         const float *y2, int label, const ClassHeadParams *p, const ClassHeadShape *s,
                         float *scratch) {
    if (label < 0) return;
    Views v = views(scratch, s);
    int C = s->C, C2 = 2 * C, K = s->K, n = pooled_count(s);
    pooled_forward(&v, y1, y2, p, s);
    // forward: nll = logsumexp(z) - z[label], so dz = scale * (softmax(z) - onehot(label))
    float mx = v.z[0];
    for (int k = 1; k < K; k++) mx = fmaxf(mx, v.z[k]);
    double sum = 0.0;
    for (int k = 0; k < K; k++) sum += exp((double)v.z[k] - mx);
    for (int k = 0; k < K; k++) v.z[k] = scale * (float)(exp((double)v.z[k] - mx) / sum);
    v.z[label] -= scale;
    // z = ad W2^T + b2; ad = drop(a); a = tanh(ud W1^T + b1), so d(pre) = d(a) (1 - a^2)
    memset(v.da, 0, C * sizeof(float));
    linear_backward(v.da, grad->out_w, grad->out_b, v.z, v.ad, p->out_w, 1, C, K);
    drop(v.da, C, s, SITE_HIDDEN, 0);
    for (int j = 0; j < C; j++) v.da[j] *= 1.0f - v.a[j] * v.a[j];
    memset(v.du, 0, C2 * sizeof(float));
    linear_backward(v.du, grad->dense_w, grad->dense_b, v.da, v.ud, p->dense_w, 1, C2, C);
    drop(v.du, C2, s, SITE_POOLED, 0);
    // u = mean_t h_t; each row's h = drop(LN(cat_t)) takes du / n
    float mean, rstd;
    for (int i = 0; i < n; i++) {
        int t = pooled_position(s, i);
        row_forward(&v, &mean, &rstd, y1, y2, t, p, s);
        for (int j = 0; j < C2; j++) v.dh[j] = v.du[j] / (float)n;
        drop(v.dh, C2, s, SITE_ROWS, (size_t)t * C2);
        memset(v.h, 0, C2 * sizeof(float));  // the row's d(cat)
        layernorm_backward(v.h, grad->ln_w, grad->ln_b, v.dh, v.cat, &mean, &rstd, p->ln_w, 1, C2);
        for (int c = 0; c < C; c++) {
            dy1[(size_t)t * C + c] += v.h[c];
            dy2[(size_t)t * C + c] += v.h[C + c];
        }
    }
}
