// embedding.h: token embedding plus HuggingFace's axial position embedding.
// Position t = i * A1 + j gets concat(pos0[i] (d0), pos1[j] (d1)), d0 + d1 = C.
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_EMBEDDING_H
#define REFORMER_EMBEDDING_H

#include <stdint.h>

typedef struct {
    int T, C, V;
    int axial[2];  // A0, A1 with A0 * A1 >= T
    int dims[2];   // d0, d1
    float dropout;
    uint64_t stream;
    int start;     // position of the first token (cached decoding: the prefix length)
} EmbedShape;

// out (T, C) = drop(wte[tokens[t]] + axial(t)); wte (V, C), pos0 (A0, d0), pos1 (A1, d1)
void embedding_forward(float *out, const int *tokens, const float *wte, const float *pos0,
                       const float *pos1, const EmbedShape *s);

// forward: out = drop(wte[tok] + pos), so dwte[tok] += d, dpos0[i] += d[:d0], dpos1[j] += d[d0:]
// with d = dout * mask.
void embedding_backward(float *dwte, float *dpos0, float *dpos1, const float *dout,
                        const int *tokens, const EmbedShape *s);

#endif
