// adam.c: flat loops over the one parameter block.
#include "adam.h"

#include <math.h>
#include <string.h>

#include "common.h"

void adam_config_default(AdamConfig *c) {
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

void adam_init(AdamState *s, size_t n) {
    s->m = xcalloc(n, sizeof(float));
    s->v = xcalloc(n, sizeof(float));
    s->n = n;
    s->t = 0;
}

void adam_free(AdamState *s) {
    xfree(s->m);
    xfree(s->v);
    memset(s, 0, sizeof(*s));
}

float adam_lr(const AdamConfig *c, long long step) {
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

double grad_norm(const float *g, size_t n) {
    double part[NORM_BLOCKS];
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < NORM_BLOCKS; b++) {
        double s = 0.0;
        for (size_t i = n * b / NORM_BLOCKS; i < n * (b + 1) / NORM_BLOCKS; i++) s += (double)g[i] * g[i];
        part[b] = s;
    }
    double sum = 0.0;
    for (int b = 0; b < NORM_BLOCKS; b++) sum += part[b];
    return sqrt(sum);
}

double adam_update(const AdamConfig *c, AdamState *s, float *params, float *grads, size_t n) {
    CHECK(n == s->n, "optimizer sized %zu, model %zu", s->n, n);
    double norm = grad_norm(grads, n);
    float scale = c->clip > 0.0f && norm > c->clip ? (float)(c->clip / norm) : 1.0f;
    s->t++;
    float lr = adam_lr(c, s->t);
    float bc1 = 1.0f - powf(c->beta1, (float)s->t), bc2 = 1.0f - powf(c->beta2, (float)s->t);
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] * scale;
        s->m[i] = c->beta1 * s->m[i] + (1.0f - c->beta1) * g;
        s->v[i] = c->beta2 * s->v[i] + (1.0f - c->beta2) * g * g;
        float mhat = s->m[i] / bc1, vhat = s->v[i] / bc2;
        params[i] -= lr * (mhat / (sqrtf(vhat) + c->eps) + c->weight_decay * params[i]);
    }
    return norm;
}
