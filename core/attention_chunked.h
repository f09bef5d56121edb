// attention_chunked.h: the attention kernel that LSH, local and full attention share.
//
// The n items of q, k, v (n, HS) are already in attention order (LSH: sorted by
// bucket; local and full: by position). They are split into chunks of CH items;
// the queries of chunk c attend to the keys of chunks c-before .. c+after, wrapping
// around (HuggingFace _look_adjacent). pos (n) gives each item's sequence position,
// used by the masks, which replace a score rather than add to it:
//   causal: key position > query position  -> -1e9
//   self:   key position == query position -> -1e5 (applied last)
// Plain attention over the whole sequence is one chunk with before = after = 0.
// Probabilities are exp(s - lse) with lse rounded to float, exactly as HuggingFace computes
// them: next to the -1e5 self mask that rounding is visible, and the oracle tests match it.
//
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_ATTENTION_CHUNKED_H
#define REFORMER_ATTENTION_CHUNKED_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

// HuggingFace's mask values (mask_value_float32, self_mask_value_float32). They replace
// the score, so a position that sees only itself still attends to itself.
#define ATTN_CAUSAL_MASK (-1e9f)
#define ATTN_SELF_MASK (-1e5f)

// HuggingFace's softmax: p = exp(s - lse) with lse = logsumexp(s) rounded to float. Next to
// the self mask that rounding is visible (a row of two self copies gets 0.4989 each, not
// 0.5), and the oracle tests match it. For a row whose maximum is mx and whose
// sum_j exp(s_j - mx) is sum: sets lse and returns the factor exp(mx - lse) that turns
// exp(s_j - mx) into p_j. Every softmax of the attention code (within a chunk window,
// over LSH rounds, in cached decoding) goes through here.
static inline float softmax_hf_scale(float mx, float sum, float *lse) {
    *lse = mx + logf(sum);
    return expf(mx - *lse);
}
// p (n) = HF's softmax of s (n); p may be s. Returns lse.
float softmax_hf(float *p, const float *s, int n);
// One query's attention (cached decoding): out (HS) = sum_j p_j val[pos_j] (val rows HS
// apart) with p = softmax_hf(scores (n)), formed in place in scores. Returns lse.
float attend_one(float *out, float *scores, const int *pos, int n, const float *val, int HS);

typedef struct {
    int n;              // items; a multiple of chunk
    int hs;             // head size HS
    int chunk;          // CH
    int before, after;  // neighbouring chunks each query chunk sees
    int causal, self_mask;
    float dropout;      // on attention probabilities
    uint64_t stream;    // dropout masks: (query item, window slot) -> keep or drop
} ChunkAttnShape;

// Floats of scratch each thread needs; pass threads_get() times this.
size_t chunk_attention_scratch_floats(const ChunkAttnShape *a);

// Keys: the rows of k (n, HS), or, when k is NULL (LSH's shared query/key), q's rows each
// times kscale (n), formed a block at a time so no key copy is stored.
// out (n, HS) = softmax(masked q k^T) v over each chunk's window; lse (n) = the
// logsumexp of each query's masked scores (HF `logits`).
void chunk_attention_forward(float *out, float *lse, const float *q, const float *k,
                             const float *kscale, const float *v, const int *pos,
                             const ChunkAttnShape *a, float *scratch);

// Backward: dq, dk, dv (n, HS) += the gradients, given dout (n, HS), dlse (n, may be NULL),
// lse from the forward and delta (n) = rowsum(dout * out), which the caller forms while it has
// both. With k NULL (shared query/key, keys q * kscale where kscale is lsh_key_scale of each
// row) dk must be NULL too: the keys' gradient flows through the scale into dq. No two threads
// add to one row, and every row is summed in the same order for any thread count.
void chunk_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *dlse,
                              const float *delta, const float *lse, const float *q, const float *k,
                              const float *kscale, const float *v, const int *pos,
                              const ChunkAttnShape *a, float *scratch);

#endif
