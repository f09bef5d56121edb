// plan.h: what a config describes before anything is allocated: the config itself, the
// bucket count its LSH layers use at a length, the chunk lengths a sequence must fit, the
// FLOPs of a step, and the sizes and layer shapes of a model built from it (ModelSpec).
// model_init builds a Model from a ModelSpec; the edges ask the same functions what a run
// will need before they build one.
#ifndef REFORMER_PLAN_H
#define REFORMER_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "class_head.h"
#include "lm_head.h"
#include "reversible.h"

#define MAX_LAYERS 64
#define MAX_HASHES 16

// What sits on top of the layers: a language-model head (next-token or masked-token labels) or a
// sequence classifier (class_head.h).
enum { HEAD_LM = 0, HEAD_CLASSIFIER = 1 };
extern const char *const head_names[];  // indexed by the enum (NULL-terminated)

typedef struct {
    int vocab, d_model, d_ff, n_heads, d_head, n_layers;
    int attn[MAX_LAYERS];         // ATTN_LSH, ATTN_LOCAL or ATTN_FULL per layer
    int n_hashes;
    LshBuckets buckets;           // n_factors 0: HuggingFace's default for the length
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
    int head;                     // HEAD_LM or HEAD_CLASSIFIER
    int classes;                  // the classifier's classes (HF num_labels)
    int pooling;                  // the classifier's POOL_FIRST (HF's), POOL_MEAN or POOL_ENDS
} ReformerConfig;

// The B6 model of BENCH.md with axial shape for seq_len 4096.
void reformer_config_default(ReformerConfig *c);

// ---- LSH arithmetic: the one place each number is derived ----
// The buckets of a round at sequence length T: the config's, or, when it leaves them to
// HuggingFace's default, that default at max(T, lsh_chunk). A model resolves them at the length
// it is trained at (sample resolves them at the checkpoint's data.seq_len, not the prompt's).
LshBuckets plan_buckets(const ReformerConfig *c, int T);
// Rotation columns of all rounds (n_hashes x lsh_rotation_cols) one position is hashed with.
long long plan_rotation_cols(const ReformerConfig *c, int T);
// The config with its bucket count resolved at T (a no-op when the config names it).
void plan_resolve_buckets(ReformerConfig *c, int T);

// ---- the parameter block ----
typedef struct {
    char name[96];      // HuggingFace state-dict key
    size_t offset;      // floats from the start of the parameter block
    size_t numel;
    int ndim, shape[3];
} ParamEntry;

typedef struct {
    float *wte, *pos0, *pos1;  // (V, C), (A0, d0), (A1, d1)
    LayerParams layer[MAX_LAYERS];
    HeadParams head;      // HEAD_LM
    ClassHeadParams cls;  // HEAD_CLASSIFIER
} ModelViews;

// One walk over the config defines the parameter block: its order, its names (HuggingFace's
// state-dict keys, into table when given) and views into base (NULL: NULL views); it counts
// the floats and tensors.
void plan_params(const ReformerConfig *c, float *base, ParamEntry *table, ModelViews *v, size_t *n_params,
                 int *n_entries);

// ---- axial position tables ----
// The tables a config leaves out, from its length and width: shape [2^(p/2), ceil(L / 2^(p/2))]
// with p = floor(log2 L) (64 x 64 for 4096: B6's), and dims [d_model / 4 (at least 1), the rest]
// (B6's 64 and 192); d_model >= 2.
void plan_axial_shape(int shape[2], long long L);
void plan_axial_dims(int dims[2], int d_model);

// ---- chunk geometry ----
// The chunk length layer l attends in: LSH's or local's; 1 for full attention.
int plan_layer_chunk(const ReformerConfig *c, int l);
// The least common multiple of the chunk lengths the layers use: a sequence longer than
// one chunk must be a multiple of it (full-attention layers impose nothing).
long long plan_chunk_lcm(const ReformerConfig *c);
// A sequence of T tokens runs when every layer's chunk either covers it or divides it:
// 0 then, else the first chunk length that does neither.
int plan_length_misfit(const ReformerConfig *c, long long T);
// The length HuggingFace pads T tokens to in evaluation (ReformerModel._pad_to_mult_of_chunk_length):
// the next multiple of plan_chunk_lcm when T is longer than the smallest chunk and not one; else T.
long long plan_padded_length(const ReformerConfig *c, long long T);

// ---- FLOPs ----
// Model FLOPs per token at sequence length T: one forward pass, or a training step (forward,
// the reversible recompute of every layer but the top kept_layers (see model_keep_layers), the
// LM head's recompute, and a backward pass of twice the forward): the FLOPs a step runs.
// Attention counts every window slot (masked ones too). LSH hashing runs in the forward pass
// only (the recompute and backward read the stored bucket orders), so it counts once.
// plan_flops_split also gives the parts (per token): the dense layers' products (projections,
// feed-forward, LM head), the attention kernels' score and value products, and hashing.
enum { FLOPS_DENSE, FLOPS_ATTN_KERNEL, FLOPS_HASH, FLOPS_PARTS };
double plan_flops_split(const ReformerConfig *c, int T, int train, int kept_layers, double part[FLOPS_PARTS]);
double plan_flops_per_token(const ReformerConfig *c, int T, int train, int kept_layers);

// ---- a model's sizes ----
// How a batch runs. AUTO: a batch of at least two sequences and as many as threads, each of at
// most MODEL_BY_SEQUENCE_T tokens, runs one sequence per thread with single-threaded kernels
// (short sequences give a team too little work per kernel, and many small regions collapse
// when another process shares the cores); its results then do not depend on the thread count.
// SPLIT_KERNELS: every batch runs sequence after sequence, each kernel split over the threads.
typedef enum { EXEC_AUTO, EXEC_SPLIT_KERNELS } ExecMode;
#define MODEL_BY_SEQUENCE_T 1024

// What describes a model of a config for batches of up to B x T tokens: nothing allocated.
typedef struct {
    ReformerConfig cfg;            // with the bucket count resolved
    int B, T;                      // the largest batch the buffers hold
    uint64_t seed;                 // initialisation; dropout masks and drawn rotations per step
    int threads;                   // threads_get() at plan time: per-thread scratch holds this many
    int team;                      // threads that may run one sequence each (0: never; ExecMode)
    size_t n_params;               // floats of the parameter block
    int n_entries;                 // its named tensors
    LayerShape shape[MAX_LAYERS];  // each layer's fixed description at T
} ModelSpec;

// The config must be valid (config_validate at the edge).
void plan_model(ModelSpec *s, const ReformerConfig *c, int B, int T, uint64_t seed, ExecMode mode);
// The LM head's shape at length T: no dropout stream, every label scored, next-token labels.
HeadShape plan_head_shape(const ModelSpec *s, int T);
// The classifier's at length T: no dropout stream, no padding.
ClassHeadShape plan_class_shape(const ModelSpec *s, int T);

// The scratch a pass borrows, for one sequence at a time: a layer's and the LM head's, one area
// (they run one after another).
typedef struct {
    LayerWork layer;
    float *head;
} ThreadScratch;
// Floats of one ThreadScratch for the spec's longest call (a multiple of 16: a team's lie 64
// bytes apart), and its views into base (all at base).
size_t plan_scratch_floats(const ModelSpec *s);
ThreadScratch plan_scratch_views(const ModelSpec *s, float *base);
// Ints of one sequence's bucket order in one layer's record at length T, (NH, NR*T).
size_t plan_order_ints(const ModelSpec *s, int T);
// Floats one layer keeps for the spec's B sequences when it keeps its activations (the
// largest of the layers: they differ only in attention kind).
size_t plan_keep_floats(const ModelSpec *s);
// Bytes of parameters + gradients, and of activations and scratch with kept_layers layers
// keeping theirs (the team's gradient blocks included).
size_t plan_param_bytes(const ModelSpec *s);
size_t plan_activation_bytes(const ModelSpec *s, int kept_layers);

// What model_init(c, B, T) allocates, in bytes (and the parameter count), and what one kept
// layer adds: the edges compare them with the machine's memory before building a model.
size_t plan_bytes_needed(const ReformerConfig *c, int B, int T, size_t *n_params);
size_t plan_keep_layer_bytes(const ReformerConfig *c, int B, int T);
// How many layers' keeps fit in budget_bytes (at most all).
int plan_keep_within(const ReformerConfig *c, int B, int T, double budget_bytes);

#endif
