// embedding.c: one dropout over the summed embedding. HuggingFace drops the
// axial and summed embeddings separately; masks cannot match across frameworks
// anyway, and with dropout off (eval, fixtures) the two agree exactly.
#include "embedding.h"

#include "common.h"
#include "rng.h"

void embedding_forward(float *out, const int *tokens, const float *wte, const float *pos0,
                       const float *pos1, const EmbedShape *s) {
    int C = s->C, d0 = s->dims[0], d1 = s->dims[1], A1 = s->axial[1];
    #pragma omp parallel for schedule(static) if (s->T > 256)
    for (int t = 0; t < s->T; t++) {
        float *o = out + (size_t)t * C;
        const float *e = wte + (size_t)tokens[t] * C;
        int at = s->start + t;
        const float *p0 = pos0 + (size_t)(at / A1) * d0, *p1 = pos1 + (size_t)(at % A1) * d1;
        for (int c = 0; c < d0; c++) o[c] = e[c] + p0[c];
        for (int c = 0; c < d1; c++) o[d0 + c] = e[d0 + c] + p1[c];
        if (s->dropout > 0.0f)
            for (int c = 0; c < C; c++) o[c] *= dropout_factor(s->stream, (size_t)t * C + c, s->dropout);
    }
}

void embedding_backward(float *dwte, float *dpos0, float *dpos1, const float *dout,
                        const int *tokens, const EmbedShape *s) {
    int C = s->C, d0 = s->dims[0], d1 = s->dims[1], A1 = s->axial[1];
    // serial: rows of dwte are shared between positions with the same token
    for (int t = 0; t < s->T; t++) {
        const float *g = dout + (size_t)t * C;
        float *e = dwte + (size_t)tokens[t] * C;
        int at = s->start + t;
        float *p0 = dpos0 + (size_t)(at / A1) * d0, *p1 = dpos1 + (size_t)(at % A1) * d1;
        for (int c = 0; c < C; c++) {
            float d = g[c];
            if (s->dropout > 0.0f) d *= dropout_factor(s->stream, (size_t)t * C + c, s->dropout);
            e[c] += d;
            if (c < d0) p0[c] += d;
            else p1[c - d0] += d;
        }
    }
}
