// adam.h: Adam with bias correction (Kingma and Ba), optional decoupled weight
// decay (AdamW), global-norm clipping, and the learning-rate schedules of the
// Reformer configs: linear warm-up, then constant, reciprocal square root, or cosine.
#ifndef REFORMER_ADAM_H
#define REFORMER_ADAM_H

#include <stddef.h>

enum { SCHEDULE_CONSTANT = 0, SCHEDULE_RSQRT = 1, SCHEDULE_COSINE = 2 };

typedef struct {
    float lr;            // peak learning rate, reached at the end of warm-up
    float beta1, beta2, eps;
    float weight_decay;  // decoupled; 0 (off) by default as in the trax configs
    float clip;          // global gradient norm limit; 0: off
    long long warmup;    // steps of linear warm-up
    long long total;     // steps of the run (cosine)
    int schedule;
} AdamConfig;

typedef struct {
    float *m, *v;        // (n) first and second moments
    size_t n;
    long long t;         // updates taken
} AdamState;

void adam_config_default(AdamConfig *c);
void adam_init(AdamState *s, size_t n);
void adam_free(AdamState *s);

// Learning rate for update number `step` (1-based).
float adam_lr(const AdamConfig *c, long long step);

// Global L2 norm of g (n).
double grad_norm(const float *g, size_t n);

// One update of params (n) from grads (n): clips, advances t, applies Adam.
// Returns the gradient norm before clipping.
double adam_update(const AdamConfig *c, AdamState *s, float *params, float *grads, size_t n);

#endif
