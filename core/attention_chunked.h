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

// Which keys a chunk of queries sees: its own chunk of `chunk` items and `before` / `after`
// neighbouring chunks (wrapping around), with the causal mask or without. LSH, local and
// plain attention each describe their window with one.
typedef struct {
    int chunk;          // CH
    int before, after;  // neighbouring chunks each query chunk sees
    int causal;
    int valid;          // positions from here on are padding (0: none); set per sequence
} Window;

// The last key position query position qp may see: every key below it is in its mask's reach.
static inline int window_key_limit(const Window *w, int qp) {
    if (w->causal || (w->valid > 0 && qp >= w->valid)) return qp;
    return w->valid > 0 ? w->valid - 1 : 0x7fffffff;
}

typedef struct {
    int n;              // items; a multiple of win.chunk
    int hs;             // head size HS
    Window win;
    int self_mask;
    float dropout;      // on attention probabilities
    uint64_t stream;    // dropout masks: (query item, window slot) -> keep or drop
} ChunkAttnShape;

// What the kernel reads, items in attention order.
typedef struct {
    const float *q;       // (n, HS) queries
    const float *k;       // (n, HS) keys, or NULL: shared query/key, keys q * kscale
    const float *kscale;  // (n) with k NULL: lsh_key_scale of each row of q
    const float *v;       // (n, HS) values, or NULL with v16
    const int *pos;       // (n) each item's sequence position, for the masks
    const uint16_t *v16;  // (n, HS) the values rounded to bf16 as the block products round them
                          // (gemm_block_round_row), or NULL: v
} ChunkInputs;

// What the backward reads of the forward's outputs and of their gradients.
typedef struct {
    const float *dout;   // (n, HS) gradient of out
    const float *dlse;   // (n) gradient of lse, or NULL
    const float *delta;  // (n) rowsum(dout * out)
    const float *lse;    // (n) the forward's
} ChunkOutGrads;

// The gradients the backward adds to, (n, HS) each; dk NULL when the keys are shared.
typedef struct {
    float *dq, *dk, *dv;
} ChunkGrads;

// Floats of scratch each thread needs; pass threads_get() times this.
size_t chunk_attention_scratch_floats(const ChunkAttnShape *a);

// out (n, HS) = softmax(masked q k^T) v over each chunk's window; lse (n) = the logsumexp of
// each query's masked scores (HF `logits`). Shared query/key keys (in->k NULL) are formed a
// block at a time, so no key copy is stored.
void chunk_attention_forward(float *out, float *lse, const ChunkInputs *in, const ChunkAttnShape *a,
                             float *scratch);

// Backward: g's gradients += those of the inputs, given go (delta the caller forms while it has
// both dout and out). With shared query/key (in->k NULL, keys q * kscale where kscale is
// lsh_key_scale of each row) g->dk must be NULL too: the keys' gradient flows through the scale
// into dq. No two threads add to one row, and every row is summed in the same order for any
// thread count.
void chunk_attention_backward(const ChunkGrads *g, const ChunkOutGrads *go, const ChunkInputs *in,
                              const ChunkAttnShape *a, float *scratch);

#endif
