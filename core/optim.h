// optim.h: the optimizers over the one parameter block: Adam with bias correction (Kingma
// and Ba), optional decoupled weight decay (AdamW), or Adafactor (Shazeer and Stern 2018,
// the paper's optimizer, with trax's defaults: factored second moments, decay 1 - t^-0.8,
// update clipping at RMS 1, step scaled by the parameter's RMS, no momentum), whose state
// is rows + columns per matrix instead of two copies of the parameters; global-norm
// clipping; and the learning-rate schedules of the Reformer configs: linear warm-up, then
// constant, reciprocal square root, or cosine.
#ifndef REFORMER_OPTIM_H
#define REFORMER_OPTIM_H

#include <stddef.h>

enum { SCHEDULE_CONSTANT = 0, SCHEDULE_RSQRT = 1, SCHEDULE_COSINE = 2 };
enum { OPT_ADAM = 0, OPT_ADAFACTOR = 1 };
// Their names in configs and on the command line, indexed by the enum (NULL-terminated).
extern const char *const optimizer_names[];

typedef struct {
    float lr;            // peak learning rate, reached at the end of warm-up
    float beta1, beta2, eps;
    float weight_decay;  // decoupled; 0 (off) by default as in the trax configs
    float clip;          // global gradient norm limit; 0: off
    long long warmup;    // steps of linear warm-up
    long long total;     // steps of the run (cosine)
    int schedule;
    int optimizer;       // OPT_ADAM or OPT_ADAFACTOR (beta1, beta2, eps unused by Adafactor)
} OptimConfig;

// A parameter tensor as Adafactor sees it: rows x cols (leading dimensions merged), with
// its factored (rows + cols) or full (numel) statistics at `state` in OptimState.v.
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
    // The state may cover one slice of a larger parameter block (ZeRO-1: each rank keeps its
    // slice's): where this state's m and v sit in the whole block's.
    size_t whole_n, whole_n_v;  // the whole block's n and n_v (== n, n_v when not a slice)
    size_t m_at, v_at;          // offsets of this slice's m in the whole m, its v in the whole v
} OptimState;

void optim_config_default(OptimConfig *c);
void optim_init_adam(OptimState *s, size_t n);
// Adafactor over n parameters laid out as n_tensors tensors: offsets, element counts and
// shapes (ndims[i] dims in shapes[i], at most 3).
void optim_init_adafactor(OptimState *s, size_t n, int n_tensors, const size_t *offsets, const size_t *numels,
                    const int *ndims, const int (*shapes)[3]);
void optim_free(OptimState *s);
// Floats of optimizer state: Adam's m and v (2n), or Adafactor's statistics (n_v).
size_t optim_state_floats(const OptimState *s);
// The same per parameter, planned before any state exists, for memory budgets: Adam's 2,
// spread over `shards` ranks when each keeps a slice; Adafactor's rows + columns per matrix
// count as 0 (far below a float a parameter).
double optim_floats_per_param(int optimizer, int shards);

// Learning rate for update number `step` (1-based).
float optim_lr(const OptimConfig *c, long long step);

// Global L2 norm of g (n), and its square: fixed blocks summed in a fixed order.
double grad_norm(const float *g, size_t n);
double grad_sumsq(const float *g, size_t n);

// One update of params (n) from grads (n): clips, advances t, applies Adam or Adafactor
// (c->optimizer; the state must have been made for it). Returns the norm before clipping.
double optim_update(const OptimConfig *c, OptimState *s, float *params, float *grads, size_t n);
// The same update of a slice, given the global gradient norm (which clipping needs).
void optim_step(const OptimConfig *c, OptimState *s, float *params, const float *grads, size_t n, double norm);

// Floats of the whole block's optimizer state (what a checkpoint holds).
size_t optim_whole_floats(const OptimState *s);

// The state c asks for over m's parameters [lo, hi), tensor boundaries (model_slices):
// Adam, or Adafactor over the tensors there. [0, m->n_params) for one process.
struct Model;
void optim_init_model(OptimState *s, const OptimConfig *c, const struct Model *m, size_t lo, size_t hi);

#endif
