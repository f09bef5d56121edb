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

#include <stddef.h>
#include <stdint.h>

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

// out (n, HS) = softmax(masked q k^T) v over each chunk's window; lse (n) = the
// logsumexp of each query's masked scores (HF `logits`).
void chunk_attention_forward(float *out, float *lse, const float *q, const float *k,
                             const float *v, const int *pos, const ChunkAttnShape *a,
                             float *scratch);

// Backward, in two passes so that no two threads add to the same row: keys are
// owned by one thread each in the first (dk, dv +=), queries in the second (dq +=).
// Given dout (n, HS), dlse (n, may be NULL), lse from the forward, and
// delta (n) = rowsum(dout * out), which the caller forms while it has both.
void chunk_attention_backward_kv(float *dk, float *dv, const float *dout, const float *dlse,
                                 const float *delta, const float *lse, const float *q,
                                 const float *k, const float *v, const int *pos,
                                 const ChunkAttnShape *a, float *scratch);
void chunk_attention_backward_q(float *dq, const float *dout, const float *dlse,
                                const float *delta, const float *lse, const float *q,
                                const float *k, const float *v, const int *pos,
                                const ChunkAttnShape *a, float *scratch);

#endif
