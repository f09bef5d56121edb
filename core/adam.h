// adam.h: the optimizers over the one parameter block: Adam with bias correction (Kingma
// and Ba), optional decoupled weight decay (AdamW), or Adafactor (Shazeer and Stern 2018,
// the paper's optimizer, with trax's defaults: factored second moments, decay 1 - t^-0.8,
// update clipping at RMS 1, step scaled by the parameter's RMS, no momentum), whose state
// is rows + columns per matrix instead of two copies of the parameters; global-norm
// clipping; and the learning-rate schedules of the Reformer configs: linear warm-up, then
// constant, reciprocal square root, or cosine.
#ifndef REFORMER_ADAM_H
#define REFORMER_ADAM_H

#include <stddef.h>

enum { SCHEDULE_CONSTANT = 0, SCHEDULE_RSQRT = 1, SCHEDULE_COSINE = 2 };
enum { OPT_ADAM = 0, OPT_ADAFACTOR = 1 };

typedef struct {
    float lr;            // peak learning rate, reached at the end of warm-up
    float beta1, beta2, eps;
    float weight_decay;  // decoupled; 0 (off) by default as in the trax configs
    float clip;          // global gradient norm limit; 0: off
    long long warmup;    // steps of linear warm-up
    long long total;     // steps of the run (cosine)
    int schedule;
    int optimizer;       // OPT_ADAM or OPT_ADAFACTOR (beta1, beta2, eps unused by Adafactor)
} AdamConfig;

// A parameter tensor as Adafactor sees it: rows x cols (leading dimensions merged), with
// its factored (rows + cols) or full (numel) statistics at `state` in AdamState.v.
typedef struct {
    size_t offset, numel, state;
    int rows, cols, factored;
} OptTensor;

typedef struct {
    float *m, *v;        // Adam: (n) first and second moments. Adafactor: m NULL, v (n_v)
    size_t n, n_v;       // parameters; floats of v
    OptTensor *tensors;  // Adafactor only
    int n_tensors;
    long long t;         // updates taken
} AdamState;

void adam_config_default(AdamConfig *c);
void adam_init(AdamState *s, size_t n);
// Adafactor over n parameters laid out as n_tensors tensors: offsets, element counts and
// shapes (ndims[i] dims in shapes[i], at most 3).
void adafactor_init(AdamState *s, size_t n, int n_tensors, const size_t *offsets, const size_t *numels,
                    const int *ndims, const int (*shapes)[3]);
void adam_free(AdamState *s);
// Floats of optimizer state: Adam's m and v (2n), or Adafactor's statistics (n_v).
size_t adam_state_floats(const AdamState *s);

// Learning rate for update number `step` (1-based).
float adam_lr(const AdamConfig *c, long long step);

// Global L2 norm of g (n).
double grad_norm(const float *g, size_t n);

// One update of params (n) from grads (n): clips, advances t, applies Adam or Adafactor
// (c->optimizer; the state must have been made for it). Returns the norm before clipping.
double adam_update(const AdamConfig *c, AdamState *s, float *params, float *grads, size_t n);

#endif
