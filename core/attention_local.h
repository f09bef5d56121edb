// attention_local.h: local self-attention of one head (HuggingFace LocalSelfAttention).
// Separate q, k, v; keys scaled by 1/sqrt(HS); chunks of `chunk` positions see
// `before`/`after` neighbouring chunks (wrapping); causal mask -1e9; no self mask.
// T <= chunk: plain attention. Backward functions add (+=) into gradients.
#ifndef REFORMER_ATTENTION_LOCAL_H
#define REFORMER_ATTENTION_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#include "attention_chunked.h"

typedef struct {
    int T, HS;
    Window win;
    float dropout;
    uint64_t stream;
} LocalShape;

size_t local_scratch_floats(const LocalShape *s);

// Floats a head keeps for a backward without recompute: outputs and logsumexps, (T, HS), (T).
size_t local_keep_floats(const LocalShape *s);

// out (T, HS; stride ld) from q, k, v (T, HS; stride ld). keep: NULL, or local_keep_floats(s)
// floats that receive what the backward would recompute.
void local_attention_forward(float *out, const float *q, const float *k, const float *v,
                             size_t ld, const LocalShape *s, float *scratch, float *keep);

// dq, dk, dv (T, HS; stride ld) += gradients given dout; out, when given, receives the
// forward output. The forward is recomputed unless kept holds what local_attention_forward
// kept for these inputs (then consumed: overwritten).
void local_attention_backward(float *dq, float *dk, float *dv, float *out, const float *dout,
                              const float *q, const float *k, const float *v, size_t ld,
                              const LocalShape *s, float *scratch, float *kept);

// Cached decoding (core/decode.h) of the newest position t: out (HS) = attention of its
// query q over the cached keys and values (rows HS apart) of positions
// ((t / chunk) - before) * chunk through t, a negative start counting from the end as
// Python slicing does in HF's _retrieve_relevant_hidden_states. scratch: the floats below
// for a cache of T positions.
size_t local_decode_scratch_floats(int T);
void local_decode(float *out, const float *q, const float *key, const float *val, int t,
                  const LocalShape *s, float *scratch);

#endif
