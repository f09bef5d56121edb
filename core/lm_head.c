// lm_head.c: ReformerEncoder's final LayerNorm and dropout, then ReformerOnlyLMHead.
#include "lm_head.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "layernorm.h"
#include "linear.h"
#include "rng.h"

typedef struct {
    float *cat, *h;      // (m, 2C) concat(y1, y2) and its normalised, dropped-out form
    float *logits;       // (m, V); in backward, dlogits
    float *dh;           // (m, 2C)
    float *mean, *rstd;  // (m)
    double *nll;         // (m) per-row loss, summed in order so the total is reproducible
    char *right;         // (m)
} Chunk;

size_t lm_head_scratch_floats(const HeadShape *s) {
    size_t m = s->chunk;
    return 3 * m * 2 * s->C + m * s->V + 2 * m + 2 * m + m;
}

static Chunk chunk_views(float *scratch, const HeadShape *s) {
    size_t m = s->chunk, c2 = 2 * (size_t)s->C;
    Chunk k;
    k.cat = scratch;
    k.h = k.cat + m * c2;
    k.logits = k.h + m * c2;
    k.dh = k.logits + m * s->V;
    k.mean = k.dh + m * c2;
    k.rstd = k.mean + m;
    k.nll = (double *)(k.rstd + m);
    k.right = (char *)(k.nll + m);
    return k;
}

// logits for positions [t0, t0+m)
static void chunk_forward(Chunk *k, const float *y1, const float *y2, const HeadParams *p,
                          int t0, int m, const HeadShape *s) {
    int C = s->C, C2 = 2 * C;
    #pragma omp parallel for schedule(static) if (m > 64)
    for (int i = 0; i < m; i++) {
        memcpy(k->cat + (size_t)i * C2, y1 + (size_t)(t0 + i) * C, C * sizeof(float));
        memcpy(k->cat + (size_t)i * C2 + C, y2 + (size_t)(t0 + i) * C, C * sizeof(float));
    }
    layernorm_forward(k->h, k->mean, k->rstd, k->cat, p->ln_w, p->ln_b, m, C2, s->eps);
    if (s->dropout > 0.0f) {
        #pragma omp parallel for schedule(static) if (m > 64)
        for (size_t i = 0; i < (size_t)m * C2; i++)
            k->h[i] *= dropout_factor(s->stream, (size_t)t0 * C2 + i, s->dropout);
    }
    linear_forward(k->logits, k->h, p->w, p->b, m, C2, s->V, 0.0f);
}

// The label of position t (at label position t + shift): none past the end or in the padding.
static int label_at(const int *labels, int t, const HeadShape *s) {
    int at = t + s->shift;
    return at < (s->valid > 0 ? s->valid : s->T) ? labels[at] : -1;
}

long long lm_head_count_labels(const int *labels, const HeadShape *s, int from) {
    long long n = 0;
    for (int t = 0; t < s->T; t++) n += t + s->shift >= from && label_at(labels, t, s) >= 0;
    return n;
}

double lm_head_forward(float *logits, long *correct, const float *y1, const float *y2,
                       const int *labels, const HeadParams *p, const HeadShape *s, float *scratch) {
    Chunk k = chunk_views(scratch, s);
    int V = s->V;
    double nll = 0.0;
    long right = 0;
    for (int t0 = 0; t0 < s->T; t0 += s->chunk) {
        int m = imin(s->chunk, s->T - t0);
        chunk_forward(&k, y1, y2, p, t0, m, s);
        if (logits) memcpy(logits + (size_t)t0 * V, k.logits, (size_t)m * V * sizeof(float));
        #pragma omp parallel for schedule(static) if (m > 64)
        for (int i = 0; i < m; i++) {
            int y = label_at(labels, t0 + i, s), at = t0 + i + s->shift;
            k.nll[i] = 0.0;
            k.right[i] = 0;
            if (y < 0 || at < s->loss_from) continue;
            const float *z = k.logits + (size_t)i * V;
            int arg = 0;
            for (int v = 1; v < V; v++)
                if (z[v] > z[arg]) arg = v;
            double sum = 0.0;
            for (int v = 0; v < V; v++) sum += exp((double)z[v] - z[arg]);
            k.nll[i] = z[arg] + log(sum) - z[y];
            k.right[i] = arg == y && at >= s->score_from;
        }
        for (int i = 0; i < m; i++) {
            nll += k.nll[i];
            right += k.right[i];
        }
    }
    if (correct) *correct += right;
    return nll;
}

void lm_head_backward(float *dy1, float *dy2, HeadParams *grad, float scale, const float *y1,
                      const float *y2, const int *labels, const HeadParams *p,
                      const HeadShape *s, float *scratch) {
    // training scores every label; skipping some (evaluation tails) has no backward here
    CHECK(s->loss_from <= s->shift, "backward of a loss from position %d: only the full loss has a backward", s->loss_from);
    Chunk k = chunk_views(scratch, s);
    int C = s->C, C2 = 2 * C, V = s->V;
    for (int t0 = 0; t0 < s->T; t0 += s->chunk) {
        int m = imin(s->chunk, s->T - t0);
        chunk_forward(&k, y1, y2, p, t0, m, s);
        // forward: nll = logsumexp(z) - z[y], so dz = scale * (softmax(z) - onehot(y))
        #pragma omp parallel for schedule(static) if (m > 64)
        for (int i = 0; i < m; i++) {
            int y = label_at(labels, t0 + i, s);
            float *z = k.logits + (size_t)i * V;
            if (y < 0) {
                memset(z, 0, V * sizeof(float));
                continue;
            }
            float mx = z[0];
            for (int v = 1; v < V; v++) mx = fmaxf(mx, z[v]);
            double sum = 0.0;
            for (int v = 0; v < V; v++) sum += exp((double)z[v] - mx);
            for (int v = 0; v < V; v++) z[v] = scale * (float)(exp((double)z[v] - mx) / sum);
            z[y] -= scale;
        }
        // forward: z = h W^T + b, so dW += dz^T h; db += sum dz; dh = dz W
        linear_backward(NULL, grad->w, grad->b, k.logits, k.h, p->w, m, C2, V);
        linear_input_grad(k.dh, k.logits, p->w, C2, m, C2, V);
        if (s->dropout > 0.0f) {
            #pragma omp parallel for schedule(static) if (m > 64)
            for (size_t i = 0; i < (size_t)m * C2; i++)
                k.dh[i] *= dropout_factor(s->stream, (size_t)t0 * C2 + i, s->dropout);
        }
        // forward: h = LN(cat); the gradient of cat splits into dy1 and dy2
        zero_floats(k.h, (size_t)m * C2);
        layernorm_backward(k.h, grad->ln_w, grad->ln_b, k.dh, k.cat, k.mean, k.rstd, p->ln_w, m, C2);
        #pragma omp parallel for schedule(static) if (m > 64)
        for (int i = 0; i < m; i++)
            for (int c = 0; c < C; c++) {
                dy1[(size_t)(t0 + i) * C + c] += k.h[(size_t)i * C2 + c];
                dy2[(size_t)(t0 + i) * C + c] += k.h[(size_t)i * C2 + C + c];
            }
    }
}
