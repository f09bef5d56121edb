// optim.c: flat loops over the one parameter block.
#include "optim.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "model.h"

const char *const optimizer_names[] = {"adam", "adafactor", NULL};

void optim_config_default(OptimConfig *c) {
    c->lr = 1e-3f;
    c->beta1 = 0.9f;
    c->beta2 = 0.98f;  // trax reformer configs
    c->eps = 1e-9f;
    c->weight_decay = 0.0f;
    c->clip = 1.0f;
    c->warmup = 100;
    c->total = 1000;
    c->schedule = SCHEDULE_RSQRT;
}

void optim_init_adam(OptimState *s, size_t n) {
    memset(s, 0, sizeof(*s));
    s->m = xcalloc(n, sizeof(float));
    s->v = xcalloc(n, sizeof(float));
    s->n = s->n_v = n;
    s->whole_n = s->whole_n_v = n;
}

// A tensor as Adafactor sees it: rows x cols, the leading dimensions merged.
static void tensor_layout(OptTensor *t, size_t numel, int ndim, const int *shape) {
    t->numel = numel;
    t->cols = ndim >= 2 ? shape[ndim - 1] : (int)numel;
    t->rows = (int)(numel / (size_t)t->cols);
    t->factored = t->rows >= 2 && t->cols >= 2;  // a vector keeps full statistics
}

static size_t tensor_state_floats(const OptTensor *t) {
    return t->factored ? (size_t)t->rows + t->cols : t->numel;
}

void optim_init_adafactor(OptimState *s, size_t n, int n_tensors, const size_t *offsets, const size_t *numels,
                    const int *ndims, const int (*shapes)[3]) {
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->n_tensors = n_tensors;
    s->tensors = xcalloc((size_t)n_tensors, sizeof(OptTensor));
    for (int i = 0; i < n_tensors; i++) {
        OptTensor *t = &s->tensors[i];
        tensor_layout(t, numels[i], ndims[i], shapes[i]);
        t->offset = offsets[i];
        t->state = s->n_v;
        s->n_v += tensor_state_floats(t);
    }
    s->v = xcalloc(s->n_v, sizeof(float));
    s->whole_n = n;
    s->whole_n_v = s->n_v;
}

void optim_free(OptimState *s) {
    xfree(s->m);
    xfree(s->v);
    xfree(s->tensors);
    memset(s, 0, sizeof(*s));
}

size_t optim_state_floats(const OptimState *s) { return (s->m ? s->n : 0) + s->n_v; }

double optim_floats_per_param(int optimizer, int shards) { return optimizer == OPT_ADAM ? 2.0 / shards : 0.0; }

size_t optim_whole_floats(const OptimState *s) { return (s->m ? s->whole_n : 0) + s->whole_n_v; }

float optim_lr(const OptimConfig *c, long long step) {
    double warm = c->warmup > 0 && step < c->warmup ? (double)step / c->warmup : 1.0;
    double decay = 1.0;
    if (c->schedule == SCHEDULE_RSQRT && c->warmup > 0 && step > c->warmup)
        decay = sqrt((double)c->warmup / step);
    else if (c->schedule == SCHEDULE_RSQRT && c->warmup == 0 && step > 1)
        decay = 1.0 / sqrt((double)step);
    else if (c->schedule == SCHEDULE_COSINE && step > c->warmup && c->total > c->warmup) {
        double progress = (double)(step - c->warmup) / (c->total - c->warmup);
        decay = 0.5 * (1.0 + cos(M_PI * fmin(progress, 1.0)));
    }
    return (float)(c->lr * warm * decay);
}

// Fixed blocks summed in a fixed order: the same bits whatever the threads do.
#define NORM_BLOCKS 64

double grad_norm(const float *g, size_t n) { return sqrt(grad_sumsq(g, n)); }

double grad_sumsq(const float *g, size_t n) {
    double part[NORM_BLOCKS];
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < NORM_BLOCKS; b++) {
        double s = 0.0;
        for (size_t i = n * b / NORM_BLOCKS; i < n * (b + 1) / NORM_BLOCKS; i++) s += (double)g[i] * g[i];
        part[b] = s;
    }
    double sum = 0.0;
    for (int b = 0; b < NORM_BLOCKS; b++) sum += part[b];
    return sum;
}

#define ADAFACTOR_DECAY 0.8      // second moments decay as 1 - t^-0.8
#define ADAFACTOR_EPS1 1e-30     // added to g^2
#define ADAFACTOR_EPS2 1e-3      // floor of the parameter-scale factor
#define ADAFACTOR_CLIP 1.0       // updates clipped to RMS <= 1

// The update of element (r, c) before clipping: g / sqrt(v_hat), where v_hat is
// vr[r] vc[c] / mean(vr) for a factored tensor and v itself otherwise.
static double adafactor_u(const OptTensor *t, const float *v, double inv_mean_row, double g, size_t r, size_t c) {
    if (!t->factored) return g / sqrt((double)v[r * t->cols + c]);
    return g / sqrt((double)v[r] * inv_mean_row * v[t->rows + c]);
}

// One Adafactor step on tensor t, in double and serially within the tensor, so its sums do
// not depend on how the tensors are spread over threads. The update is recomputed in the
// second pass rather than stored: no buffer the size of the tensor.
static void adafactor_tensor(const OptTensor *t, float *v, float *w, const float *grad, float scale, double decay,
                             double lr, double weight_decay) {
    size_t R = (size_t)t->rows, C = (size_t)t->cols, n = t->numel;
    double inv_mean_row = 1.0;
    if (t->factored) {  // v: (R) row means, then (C) column means, of g^2 + eps1
        double *col = xcalloc(C, sizeof(double));
        for (size_t r = 0; r < R; r++) {
            double row = 0;
            for (size_t c = 0; c < C; c++) {
                double g = (double)grad[r * C + c] * scale, g2 = g * g + ADAFACTOR_EPS1;
                row += g2;
                col[c] += g2;
            }
            v[r] = (float)(decay * v[r] + (1 - decay) * row / C);
        }
        for (size_t c = 0; c < C; c++) v[R + c] = (float)(decay * v[R + c] + (1 - decay) * col[c] / R);
        xfree(col);
        double mean_row = 0;
        for (size_t r = 0; r < R; r++) mean_row += v[r];
        inv_mean_row = R / mean_row;
    } else {
        for (size_t i = 0; i < n; i++) {
            double g = (double)grad[i] * scale;
            v[i] = (float)(decay * v[i] + (1 - decay) * (g * g + ADAFACTOR_EPS1));
        }
    }
    double uu = 0, ww = 0;
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < C; c++) {
            double u = adafactor_u(t, v, inv_mean_row, (double)grad[r * C + c] * scale, r, c);
            uu += u * u;
            ww += (double)w[r * C + c] * w[r * C + c];
        }
    double clip = fmax(1.0, sqrt(uu / n) / ADAFACTOR_CLIP);
    double step = lr * fmax(sqrt(ww / n), ADAFACTOR_EPS2) / clip;  // relative to the parameter's scale
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < C; c++) {
            double u = adafactor_u(t, v, inv_mean_row, (double)grad[r * C + c] * scale, r, c);
            w[r * C + c] = (float)((1.0 - weight_decay * lr) * w[r * C + c] - step * u);
        }
}

double optim_update(const OptimConfig *c, OptimState *s, float *params, float *grads, size_t n) {
    double norm = grad_norm(grads, n);
    optim_step(c, s, params, grads, n, norm);
    return norm;
}

void optim_step(const OptimConfig *c, OptimState *s, float *params, const float *grads, size_t n, double norm) {
    CHECK(n == s->n, "optimizer sized %zu, model %zu", s->n, n);
    CHECK((c->optimizer == OPT_ADAFACTOR) == (s->m == NULL), "optimizer state made for the other optimizer");
    float scale = c->clip > 0.0f && norm > c->clip ? (float)(c->clip / norm) : 1.0f;
    s->t++;
    float lr = optim_lr(c, s->t);
    if (c->optimizer == OPT_ADAFACTOR) {
        double decay = 1.0 - pow((double)s->t, -ADAFACTOR_DECAY);
        // tensors are independent: one per thread, each summed serially (same bits for any split)
        #pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < s->n_tensors; i++) {
            const OptTensor *t = &s->tensors[i];
            adafactor_tensor(t, s->v + t->state, params + t->offset, grads + t->offset, scale, decay, lr,
                             c->weight_decay);
        }
        return;
    }
    float bc1 = 1.0f - powf(c->beta1, (float)s->t), bc2 = 1.0f - powf(c->beta2, (float)s->t);
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] * scale;
        s->m[i] = c->beta1 * s->m[i] + (1.0f - c->beta1) * g;
        s->v[i] = c->beta2 * s->v[i] + (1.0f - c->beta2) * g * g;
        float mhat = s->m[i] / bc1, vhat = s->v[i] / bc2;
        params[i] -= lr * (mhat / (sqrtf(vhat) + c->eps) + c->weight_decay * params[i]);
    }
}

void optim_init_model(OptimState *opt, const OptimConfig *c, const Model *m, size_t lo, size_t hi) {
    if (c->optimizer == OPT_ADAM) {
        optim_init_adam(opt, hi - lo);
        opt->whole_n = opt->whole_n_v = m->spec.n_params;
        opt->m_at = opt->v_at = lo;
        return;
    }
    // Adafactor factors each matrix's statistics, so it needs the tensors' shapes: those of
    // the slice, at offsets from lo; the others count for the slice's place in the whole
    int n = m->spec.n_entries, k = 0;
    size_t *offsets = xmalloc((size_t)n * sizeof(size_t)), *numels = xmalloc((size_t)n * sizeof(size_t));
    int *ndims = xmalloc((size_t)n * sizeof(int)), (*shapes)[3] = xmalloc((size_t)n * sizeof(*shapes));
    size_t whole_n_v = 0, v_at = 0;
    for (int i = 0; i < n; i++) {
        const ParamEntry *e = &m->w.table[i];
        OptTensor t;
        tensor_layout(&t, e->numel, e->ndim, e->shape);
        size_t floats = tensor_state_floats(&t);
        whole_n_v += floats;
        if (e->offset < lo) v_at += floats;
        if (e->offset < lo || e->offset >= hi) continue;
        offsets[k] = e->offset - lo;
        numels[k] = e->numel;
        ndims[k] = e->ndim;
        memcpy(shapes[k], e->shape, sizeof(shapes[k]));
        k++;
    }
    optim_init_adafactor(opt, hi - lo, k, offsets, numels, ndims, (const int (*)[3])shapes);
    opt->whole_n = m->spec.n_params;
    opt->whole_n_v = whole_n_v;
    opt->v_at = v_at;
    xfree(offsets);
    xfree(numels);
    xfree(ndims);
    xfree(shapes);
}
