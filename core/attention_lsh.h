// attention_lsh.h: LSH self-attention of one head (HuggingFace LSHSelfAttention).
//
// Shared query/key: queries are qk as projected, keys are qk length-normalised
// (k = qk / sqrt(mean(qk^2) + 1e-6) / sqrt(HS)). Each of NR rounds hashes qk with a
// random rotation R (HS, NB/2): bucket = argmax(concat(qk R, -qk R)), offset by
// round * NB (factorised NB: one argmax per factor, combined mixed-radix). Items
// (round, position) are sorted stably by (bucket, position), cut into chunks that
// see `before`/`after` neighbours, attended with causal and self masks, unsorted,
// and the rounds combined with weights softmax_r(logsumexp_r).
// When T <= chunk the head does plain attention (one chunk, one round), as HF does;
// that plain mode is also our "full" attention.
//
#ifndef REFORMER_ATTENTION_LSH_H
#define REFORMER_ATTENTION_LSH_H

#include <stddef.h>
#include <stdint.h>

#include "attention_chunked.h"

// The buckets of one round: NB = the product of one or two factors (HF's num_buckets, an int
// or a pair), each even, or 1 for the one-bucket mode (eval --attn chunks).
typedef struct {
    int n_factors;  // 1 or 2; 0 in a config: HuggingFace's default for the length
    int factor[2];
} LshBuckets;

typedef struct {
    int T, HS;
    int n_hashes;        // NR
    LshBuckets buckets;  // resolved: n_factors 1 or 2
    Window win;
    int plain;           // plain attention over the whole sequence (full, or T <= chunk)
    float dropout;
    uint64_t stream;     // dropout on attention probabilities
    int v_bf16;          // the gathered values are held in bf16 (the block products round them
                         // anyway: gemm_block_rounds() at plan time), in half the floats
} LshShape;

// Items in the attention order: NR * T, or T in plain mode.
int lsh_items(const LshShape *s);
// Buckets per round NB: the product of the factors.
int lsh_bucket_count(const LshBuckets *b);
// Columns of the rotation matrix per round: the sum of factor / 2.
int lsh_rotation_cols(const LshBuckets *b);
// Rotation columns of all rounds together (n_hashes x the columns of one round) that one
// position is hashed with; the config refuses more (cmd/config.c).
#define LSH_MAX_ROTATION_COLS 4096
// The largest head size (model.d_head allows up to 512): one row of it is a stack buffer.
#define LSH_MAX_HEAD 512
// Above this many bytes per (items, HS) array, the passes around the kernel move rows in the
// order they lie with streaming stores; below it the arrays stay in cache and sorted rows are
// read where they lie. The same bits either way (tests set it to 0 to check).
extern size_t lsh_stream_bytes;
// Floats of scratch per head call (forward and backward); threads_get() is read.
size_t lsh_scratch_floats(const LshShape *s);

// Hash qk (T, HS, row stride ld) with rot (HS, NR, cols) and write the stable
// bucket order: sorted (NR*T) holds round * T + position. Positions from s->win.valid on (0:
// none) are padding: HF gives them one extra bucket, after the others, in every round (and the
// kernel masks them as keys). scratch as above.
void lsh_hash(int *sorted, const float *qk, size_t ld, const float *rot, const LshShape *s, float *scratch);

// The bucket of one vector qk (HS) in each round (NR), without round offsets: what
// lsh_hash sorts by. Cached decoding hashes each new position with it.
void lsh_buckets_of(int *bucket, const float *qk, const float *rot, const LshShape *s);
// The factor that makes qk (HS) a key: 1 / sqrt(mean(qk^2) + 1e-6) / sqrt(HS) (HF _len_and_dim_norm).
float lsh_key_scale(const float *qk, int HS);
// Floats a head keeps for a backward without recompute: its sorted outputs and their
// logsumexps, (N, HS) and (N).
size_t lsh_keep_floats(const LshShape *s);
// out (T, HS; stride ld) = LSH attention of qk, v (T, HS; stride ld) given the order.
// keep: NULL, or lsh_keep_floats(s) floats that receive what the backward would recompute.
void lsh_attention_forward(float *out, const int *sorted, const float *qk, const float *v,
                           size_t ld, const LshShape *s, float *scratch, float *keep);

// dqk, dv (T, HS; stride ld) = gradients given dout (T, HS; stride ld): unlike the other
// backward functions this one overwrites, read qk and v only before, so dqk may be qk and
// dv may be v (the attention layer keeps no separate gradient buffers). The backward
// recomputes the forward, unless kept holds what lsh_attention_forward kept for these inputs
// (then consumed: overwritten); when out is given it receives the forward's output too, so a
// caller that needs both pays for one forward (or none).
void lsh_attention_backward(float *dqk, float *dv, float *out, const float *dout,
                            const int *sorted, const float *qk, const float *v, size_t ld,
                            const LshShape *s, float *scratch, float *kept);

// Stable counting sort of one round: order (n) = positions 0..n-1 by bucket (n, each < nb);
// count (nb) is scratch. lsh_hash and cached decoding sort with it.
void lsh_sort_round(int *order, const int *bucket, int n, int nb, int *count);

// ---- cached decoding (core/decode.h), one head ----
// The cache of one head: per position its qk as projected, the factor that makes it a key,
// its value and, once hashed, its bucket per round and the positions sorted by (bucket,
// position) per round.
typedef struct {
    const float *key;        // (T, HS)
    const float *key_scale;  // (T) lsh_key_scale of each key
    const float *val;        // (T, HS)
    int *bucket, *order;     // (NR, T), rows T apart
    int T;                   // positions the cache holds
} LshHeadCache;

// Floats of scratch for one lsh_decode call on a cache of T positions.
size_t lsh_decode_scratch_floats(const LshShape *s, int T);
// Hash positions [0, L) and sort them (HF caches buckets once the length reaches the
// chunk length); count (NB ints) is scratch.
void lsh_cache_hash(LshHeadCache *c, int L, const float *rot, const LshShape *s, int *count);
// out (HS) = attention of the newest position t, whose qk is key row t, over the cache.
// hashed: t is hashed, sorted in after every cached position of its bucket, and in each
// round attends the chunk window around its slot, wrapping modulo t + 1 as HF does, with
// the self mask and no causal mask (all are past); rounds combined by softmax over their
// logsumexps. Not hashed (fewer than chunk positions): plain attention over 0..t with the
// self mask; that is also full attention's decoding.
void lsh_decode(float *out, LshHeadCache *c, int t, int hashed, const float *rot, const LshShape *s,
                float *scratch);

// HuggingFace's default bucket count for sequence length T (ReformerConfig.num_buckets = None):
// n = 2^p with p = bit_length(2 * (T / chunk)) - 1, factorised into [2^(p/2), 2^(p-p/2)] when
// n > 2 * max(sqrt(max_pos / chunk), chunk). plan_buckets (plan.h) is the one caller.
LshBuckets lsh_default_buckets(int T, int chunk, int max_pos);

#endif
