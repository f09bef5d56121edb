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
//   model_backward(&m, m.n_labels, NULL);                  // grads += d loss / d params
//   optim_update(&opt, &state, m.params, m.grads, m.n_params);   // optim.h
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
#include "lm_head.h"
#include "reversible.h"

#define MAX_LAYERS 64
#define MAX_HASHES 16

typedef struct {
    int vocab, d_model, d_ff, n_heads, d_head, n_layers;
    int attn[MAX_LAYERS];         // ATTN_LSH, ATTN_LOCAL or ATTN_FULL per layer
    int n_hashes;
    int n_bucket_factors;         // 0: HuggingFace's default for the sequence length
    int buckets[2];
    int lsh_chunk, lsh_before, lsh_after;
    int local_chunk, local_before, local_after;
    int axial_shape[2], axial_dims[2];
    int act;                      // ACT_GELU or ACT_RELU
    int causal;                   // HF is_decoder
    float hidden_dropout, lsh_dropout, local_dropout;
    float ln_eps;                 // 1e-12 as HuggingFace
    float init_std;               // 0.02 (HF initializer_range)
    float axial_std;              // std of the axial position tables at initialisation: 0.02;
                                  // HF's axial_norm_std is 1.0, which stalls learning (README)
    int ffn_chunk, head_chunk;    // positions per chunk of the FFN and the LM head
    long long hash_seed;          // >= 0: every LSH layer and step draws the same rotations
} ReformerConfig;

// The B6 model of BENCH.md with axial shape for seq_len 4096.
void reformer_config_default(ReformerConfig *c);

typedef struct {
    char name[96];      // HuggingFace state-dict key
    size_t offset;      // floats from the start of the parameter block
    size_t numel;
    int ndim, shape[3];
} ParamEntry;

typedef struct {
    float *wte, *pos0, *pos1;  // (V, C), (A0, d0), (A1, d1)
    LayerParams layer[MAX_LAYERS];
    HeadParams head;
} ModelViews;

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
} ForwardArgs;

typedef struct Model {
    ReformerConfig cfg;   // with the bucket count resolved
    int B, T;             // the largest batch the buffers hold
    int threads;          // threads_get() at model_init: per-thread scratch holds this many
    size_t n_params;
    float *params, *grads;         // one block each, same layout
    ParamEntry *table;
    int n_entries;
    ModelViews p, g;      // named views into params and grads
    float *x1, *x2, *dx1, *dx2;    // (B, T, C): the two halves and their gradients
    int *sorted;          // (NL, B, NH, NR*T) bucket order of each LSH layer
    size_t sorted_per_layer;
    float *rot;           // (NH, HS, NR, cols) rotations of the layer being hashed
    float *attn_work, *ffn_work, *head_work;  // scratch shared by every layer
    // batches of short sequences run one sequence per thread (model_forward), each thread
    // with its own scratch and gradient: team copies of them (0: this model never does; tests
    // set it to 0 after model_init to take the path that splits each sequence's kernels)
    int team;
    float *team_work;     // (team, attention + feed-forward + head scratch)
    float *team_grads;    // (team, n_params), made at the first backward pass by sequence
    ModelViews *team_g;   // (team) views into team_grads
    double *seq_nll;      // (B) each sequence's summed NLL and right guesses in the last forward
    long *seq_correct;
    int n_kept;           // the top n_kept layers keep their activations (model_keep_layers)
    size_t kept_per_layer;  // floats: B sequences of reversible_keep_floats
    float *kept;          // (n_kept, kept_per_layer)
    LayerShape shape[MAX_LAYERS];  // each layer's fixed description (from cfg, at T)
    uint64_t seed;        // dropout masks and drawn rotations derive from (seed, step)
    // the last forward: its inputs, which backward and model_logits replay, and its counts
    ForwardArgs args;
    const int *tokens;    // (B, T)
    int cur_B, cur_T;
    long long n_labels;   // labels in the loss
    long long correct;    // labels at positions >= args.score_from predicted right
    long long scored;     // labels at positions >= args.score_from
} Model;

// Sizes the buffers for batches of up to B sequences of up to T tokens.
// The config must be valid (config_validate at the edge).
void model_init(Model *m, const ReformerConfig *c, int B, int T, uint64_t seed);
// Memory for speed: the top n layers keep their forward's activations and their backward
// skips the recompute (a quarter of each one's training FLOPs); 0, the default, keeps none.
// Results equal the recompute path's up to the rounding of the reversible inverse.
void model_keep_layers(Model *m, int n);
// Bytes one layer keeps for batches of B sequences of T tokens, and how many layers' keeps
// fit in budget_bytes (at most all).
size_t model_keep_layer_bytes(const ReformerConfig *c, int B, int T);
int model_keep_within(const ReformerConfig *c, int B, int T, double budget_bytes);
void model_free(Model *m);
void model_zero_grad(Model *m);

// Mean next-token NLL (nats) over B*(T-1) labels of tokens (B, T); T <= m->T.
// A batch of at least two sequences and as many as threads, each of at most
// MODEL_BY_SEQUENCE_T tokens, runs one sequence per thread with single-threaded kernels (short sequences give a
// team too little work per kernel, and many small regions collapse when another process
// shares the cores); its results then do not depend on the thread count.
#define MODEL_BY_SEQUENCE_T 1024
double model_forward(Model *m, const int *tokens, int B, int T, const ForwardArgs *a);
// grads += d(summed NLL / labels)/d params for the last forward (with its args); x1, x2 are
// consumed. labels: what the loss averages over: the forward's m->n_labels in one process,
// the sum over every rank's in data-parallel training. With acc (n_params doubles), each
// sequence's gradient is formed alone and added to acc in double, in sequence order: the
// batch's sum then hardly depends on how sequences are grouped (one process, or any number
// of data-parallel ranks); grads is then scratch. A batch that runs by sequence (see
// model_forward) forms each sequence's gradient alone too and adds it to grads (or acc) in
// sequence order.
void model_backward(Model *m, long long labels, double *acc);
// Logits (B, T, V) of the last forward; recomputes the head only.
void model_logits(Model *m, float *logits);
// Logits (V), without dropout, of one position whose top-layer halves are y1, y2 (C each).
void model_logits_of(Model *m, float *logits, const float *y1, const float *y2);

// Bytes of parameters + gradients (optimizer state is optim.h's), and of activations
// and scratch as allocated for (B, T).
size_t model_param_bytes(const Model *m);
size_t model_activation_bytes(const Model *m);
// What model_init(c, B, T) will allocate, in bytes, found without allocating (and the
// parameter count): the edges compare it with the machine's memory before building a
// model a config asks for.
size_t model_bytes_needed(const ReformerConfig *c, int B, int T, size_t *n_params);

// The chunk length layer l attends in: LSH's or local's; 1 for full attention.
int model_layer_chunk(const ReformerConfig *c, int l);
// The least common multiple of the chunk lengths the layers use: a sequence longer than
// one chunk must be a multiple of it (full-attention layers impose nothing).
long long model_chunk_lcm(const ReformerConfig *c);
// A sequence of T tokens runs when every layer's chunk either covers it or divides it:
// 0 then, else the first chunk length that does neither.
int model_length_misfit(const ReformerConfig *c, long long T);

// The parameter block cut into `parts` contiguous slices at tensor boundaries, each as near
// n_params / parts floats as the tensors allow, for data-parallel ranks: slice r is
// [at[r], at[r + 1]), at has parts + 1 entries; parts <= n_entries.
void model_slices(const Model *m, int parts, size_t *at);

// Model FLOPs per token at sequence length T: one forward pass, or a training
// step (forward, the reversible recompute of every layer but the top kept_layers (see
// model_keep_layers), the LM head's recompute, and a backward pass of twice the forward):
// the FLOPs a step runs.
// Attention counts every window slot (masked ones too). LSH hashing runs in the forward
// pass only (the recompute and backward read the stored bucket orders), so it counts once.
// model_flops_split also gives the parts (per token): the dense layers' products (projections,
// feed-forward, LM head), the attention kernels' score and value products, and hashing.
enum { FLOPS_DENSE, FLOPS_ATTN_KERNEL, FLOPS_HASH, FLOPS_PARTS };
double model_flops_split(const ReformerConfig *c, int T, int train, int kept_layers, double part[FLOPS_PARTS]);
double model_flops_per_token(const ReformerConfig *c, int T, int train, int kept_layers);

// ---- for cached decoding (core/decode.c) and for tests that replay the layers ----
// The rotations LSH layer `layer` hashes with under a: a->rotations[layer] when given,
// else drawn for a->step into m->rot.
const float *model_layer_rotations(Model *m, const ForwardArgs *a, int layer);
// out (T, C) = embeddings, without dropout, of tokens (T) at positions start..
void model_embed(Model *m, float *out, const int *tokens, int T, int start);
// The random streams of a step (dropout masks).
uint64_t model_layer_stream(const Model *m, long long step, int layer);
uint64_t model_embed_stream(const Model *m, long long step, int b);
uint64_t model_head_stream(const Model *m, long long step, int b);

#endif
