// attention_local.h: local self-attention of one head (HuggingFace LocalSelfAttention).
// Separate q, k, v; keys scaled by 1/sqrt(HS); chunks of `chunk` positions see
// `before`/`after` neighbouring chunks (wrapping); causal mask -1e9; no self mask.
// T <= chunk: plain attention. Backward functions add (+=) into gradients.
#ifndef REFORMER_ATTENTION_LOCAL_H
#define REFORMER_ATTENTION_LOCAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int T, HS, chunk, before, after, causal;
    float dropout;
    uint64_t stream;
} LocalShape;

size_t local_scratch_floats(const LocalShape *s);

// out (T, HS; stride ld) from q, k, v (T, HS; stride ld).
void local_attention_forward(float *out, const float *q, const float *k, const float *v,
                             size_t ld, const LocalShape *s, float *scratch);

// dq, dk, dv (T, HS; stride ld) += gradients given dout; out, when given,
// receives the forward output the backward recomputes anyway.
void local_attention_backward(float *dq, float *dk, float *dv, float *out, const float *dout,
                              const float *q, const float *k, const float *v, size_t ld,
                              const LocalShape *s, float *scratch);

#endif
