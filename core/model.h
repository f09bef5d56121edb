// model.h: the Reformer language model (HuggingFace ReformerModelWithLMHead).
//
// A worked example, the whole training step:
//
//   ReformerConfig cfg;
//   reformer_config_default(&cfg);               // the B6 model of BENCH.md
//   threads_set(2);                              // before model_init: scratch is per thread
//   Model m;
//   model_init(&m, &cfg, /*B=*/1, /*T=*/4096, /*seed=*/1);
//   model_zero_grad(&m);
//   ForwardArgs a = {.step = step, .training = 1};
//   double loss = model_forward(&m, tokens, 1, 4096, &a);  // mean next-token NLL, nats
//   model_backward(&m, m.act.n_labels, NULL);              // grads += d loss / d params
//   optim_update(&opt, &state, m.w.params, m.w.grads, m.spec.n_params);   // optim.h
//
// A Model is four parts, each with one job: spec (what describes it: the config, its sizes,
// each layer's shape; plan.h), w (what it learns: parameters, gradients and the table naming
// them), act (what a forward pass leaves for its backward) and work (scratch the kernels borrow).
//   model_free(&m);
//
// Data flow: tokens -> embedding e -> (x1, x2) = (e, e) -> NL reversible layers ->
// LayerNorm(concat(y1, y2)) -> dense to V -> cross-entropy. Only (y1, y2) at the top
// survive the forward pass, plus each LSH layer's bucket order (NH * NR * T ints per
// sequence); the backward pass recomputes every layer's input from its output (unless
// model_keep_layers traded memory for that recompute).
#ifndef REFORMER_MODEL_H
#define REFORMER_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "embedding.h"
#include "plan.h"

// Every input of a forward pass besides the parameters and the tokens, given at the call.
// All zero: evaluation (no dropout) at step 0 with drawn rotations, every label scored.
typedef struct {
    long long step;       // mixed into the dropout masks and the drawn LSH rotations
    int training;         // dropout on
    int reuse_buckets;    // 1: keep the last forward's bucket order (gradient checks:
                          // hashing is piecewise constant); 0: hash
    const float *const *rotations;  // NULL, or per layer the LSH rotations (NH, HS, NR,
                                    // cols) to hash with (HF's); NULL entries are drawn
    int loss_from;        // labels before this position are not in the loss (evaluation tails)
    int score_from;       // first label position counted in `correct` and `scored`
    int first_seq;        // index of tokens' first sequence in the global batch (data-parallel
                          // ranks): dropout masks are drawn per global sequence
    const int *valid;     // (B) each sequence's real length, or NULL: all T. Positions from there
                          // on are padding, as HF pads a length the chunks do not divide: their
                          // own LSH bucket, masked as keys, no labels; real positions never see it
    const int *labels;    // LM head: NULL, the next token of `tokens` (causal LM), or (B, T) each
                          // position's own label, -1 for none (masked LM). Classifier: (B) each
                          // sequence's class (-1: none)
} ForwardArgs;

// What the model learns: parameters and gradients, one block each in the same layout, and
// the table that names the block's tensors.
typedef struct {
    float *params, *grads;  // (n_params) each
    ParamEntry *table;      // (n_entries)
    ModelViews p, g;        // named views into params and grads
} ModelWeights;

// What a forward pass leaves for its backward pass, and what it counted.
typedef struct {
    float *x1, *x2, *dx1, *dx2;  // (B, T, C): the two halves and their gradients
    int *sorted;                 // (NL, B, NH, NR*T) bucket order of each LSH layer
    size_t sorted_per_layer;     // ints: B sequences of plan_order_ints at T
    int n_kept;                  // the top n_kept layers keep their activations (model_keep_layers)
    size_t kept_per_layer;       // floats: plan_keep_floats
    float *kept;                 // (n_kept, kept_per_layer)
    double *seq_nll;             // (B) each sequence's summed NLL and right guesses
    long *seq_correct;
    int *seq_pred;               // (B) the classifier's predicted class of each sequence
    // the last forward: its inputs, which backward and model_logits replay, and its counts
    ForwardArgs args;
    const int *tokens;           // (B, T)
    int cur_B, cur_T;
    long long n_labels;          // labels in the loss
    long long correct;           // labels at positions >= args.score_from predicted right
    long long scored;            // labels at positions >= args.score_from
} Activations;

// What the kernels borrow: the scratch they share when they split each sequence, and for a
// batch run one sequence per thread (ModelSpec.team) a scratch and a gradient block each.
typedef struct {
    float *rot;              // (NH, HS, NR, cols) rotations of the layer being hashed
    float *shared;           // plan_scratch_floats
    float *team;             // (team, plan_scratch_floats)
    float *team_grads;       // (team, n_params), made at the first backward pass by sequence
    ModelViews *team_g;      // (team) views into team_grads
} Workspace;

typedef struct Model {
    ModelSpec spec;    // what describes it: config, sizes, layer shapes (plan.h)
    ModelWeights w;    // what it learns
    Activations act;   // what a forward pass leaves for the backward pass
    Workspace work;    // what the kernels borrow
} Model;

// Sizes the buffers for batches of up to B sequences of up to T tokens (plan_model).
// The config must be valid (config_validate at the edge).
void model_init(Model *m, const ReformerConfig *c, int B, int T, uint64_t seed);
void model_init_mode(Model *m, const ReformerConfig *c, int B, int T, uint64_t seed, ExecMode mode);
// Memory for speed: the top n layers keep their forward's activations and their backward
// skips the recompute (a quarter of each one's training FLOPs); 0, the default, keeps none.
// Results equal the recompute path's up to the rounding of the reversible inverse.
void model_keep_layers(Model *m, int n);
void model_free(Model *m);
void model_zero_grad(Model *m);

// The activations and workspace of a spec: a second user of a model's weights (the decoder)
// makes its own.
void activations_init(Activations *a, const ModelSpec *s);
void activations_free(Activations *a);
void workspace_init(Workspace *w, const ModelSpec *s);
void workspace_free(Workspace *w);

// Mean NLL (nats) over the labels of tokens (B, T) (ForwardArgs.labels: next tokens, masked
// tokens or classes); T <= spec.T. How the batch runs (one sequence per thread, or kernels split
// over the threads) is the spec's ExecMode.
double model_forward(Model *m, const int *tokens, int B, int T, const ForwardArgs *a);
// grads += d(summed NLL / labels)/d params for the last forward (with its args); x1, x2 are
// consumed. labels: what the loss averages over: the forward's act.n_labels in one process,
// the sum over every rank's in data-parallel training. With acc (n_params doubles), each
// sequence's gradient is formed alone and added to acc in double, in sequence order: the
// batch's sum then hardly depends on how sequences are grouped (one process, or any number
// of data-parallel ranks); grads is then scratch. A batch that runs by sequence (see
// model_forward) forms each sequence's gradient alone too and adds it to grads (or acc) in
// sequence order.
void model_backward(Model *m, long long labels, double *acc);
// Logits (B, T, V) of the last forward; recomputes the head only.
void model_logits(Model *m, float *logits);
// Logits (V), without dropout, of one position whose top-layer halves are y1, y2 (C each);
// head_scratch: ThreadScratch.head of a workspace of this model's spec.
void model_logits_of(const Model *m, float *logits, const float *y1, const float *y2, float *head_scratch);

// Bytes of parameters + gradients (optimizer state is optim.h's), and of activations
// and scratch as allocated.
size_t model_param_bytes(const Model *m);
size_t model_activation_bytes(const Model *m);

// The parameter block cut into `parts` contiguous slices at tensor boundaries, each as near
// n_params / parts floats as the tensors allow, for data-parallel ranks: slice r is
// [at[r], at[r + 1]), at has parts + 1 entries; parts <= n_entries.
void model_slices(const Model *m, int parts, size_t *at);

// ---- for cached decoding (core/decode.c) and for tests that replay the layers ----
// The rotations LSH layer `layer` hashes with under a: a->rotations[layer] when given,
// else drawn for a->step into rot (NH, HS, NR, cols).
const float *model_layer_rotations(const Model *m, const ForwardArgs *a, int layer, float *rot);
// out (T, C) = embeddings, without dropout, of tokens (T) at positions start..
void model_embed(const Model *m, float *out, const int *tokens, int T, int start);
// The random streams of a step (dropout masks).
uint64_t model_layer_stream(const Model *m, long long step, int layer);
uint64_t model_embed_stream(const Model *m, long long step, int b);
uint64_t model_head_stream(const Model *m, long long step, int b);

#endif
