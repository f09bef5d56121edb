// attention_local.c: positions in order, so only gathering and key scaling
// surround the shared chunked kernel.
#include "attention_local.h"

#include <math.h>
#include <string.h>

#include "attention_chunked.h"
#include "common.h"

static ChunkAttnShape kernel_shape(const LocalShape *s) {
    int plain = s->T <= s->win.chunk;
    ChunkAttnShape a = {0};
    a.n = s->T;
    a.hs = s->HS;
    a.win = s->win;
    if (plain) a.win = (Window){s->T, 0, 0, s->win.causal, s->win.valid};
    a.self_mask = 0;
    a.dropout = s->dropout;
    a.stream = s->stream;
    return a;
}

typedef struct {
    float *q, *k, *v, *o, *dq, *dk, *dv;  // (T, HS) contiguous; o holds dout in backward
    float *lse, *delta;                          // (T)
    int *pos;                                    // (T)
    float *kernel;
} Work;

static Work work_views(float *scratch, const LocalShape *s) {
    size_t n = (size_t)s->T * s->HS;
    Work w;
    w.q = scratch;
    w.k = w.q + n;
    w.v = w.k + n;
    w.o = w.v + n;
    w.dq = w.o + n;
    w.dk = w.dq + n;
    w.dv = w.dk + n;
    w.lse = w.dv + n;
    w.delta = w.lse + s->T;
    w.pos = (int *)(w.delta + s->T);
    w.kernel = (float *)(w.pos + s->T);
    return w;
}

size_t local_scratch_floats(const LocalShape *s) {
    ChunkAttnShape a = kernel_shape(s);
    return 7 * (size_t)s->T * s->HS + 3 * (size_t)s->T +
           chunk_attention_scratch_floats(&a) * threads_get();
}

size_t local_keep_floats(const LocalShape *s) { return (size_t)s->T * (s->HS + 1); }

// The outputs and their logsumexps live in keep when the caller keeps them.
static void keep_views(Work *w, float *keep, const LocalShape *s) {
    if (!keep) return;
    w->o = keep;
    w->lse = keep + (size_t)s->T * s->HS;
}

// forward: keys are k / sqrt(HS) (HF scales the keys, not the scores)
static void gather(Work *w, const float *q, const float *k, const float *v, size_t ld,
                   const LocalShape *s) {
    int HS = s->HS;
    float scale = 1.0f / sqrtf((float)HS);
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < s->T; t++) {
        for (int d = 0; d < HS; d++) {
            w->q[(size_t)t * HS + d] = q[(size_t)t * ld + d];
            w->k[(size_t)t * HS + d] = k[(size_t)t * ld + d] * scale;
            w->v[(size_t)t * HS + d] = v[(size_t)t * ld + d];
        }
        w->pos[t] = t;
    }
}

void local_attention_forward(float *out, const float *q, const float *k, const float *v,
                             size_t ld, const LocalShape *s, float *scratch, float *keep) {
    Work w = work_views(scratch, s);
    ChunkAttnShape a = kernel_shape(s);
    keep_views(&w, keep, s);
    gather(&w, q, k, v, ld, s);
    chunk_attention_forward(w.o, w.lse, &(ChunkInputs){w.q, w.k, NULL, w.v, w.pos}, &a, w.kernel);
    for (int t = 0; t < s->T; t++)
        memcpy(out + (size_t)t * ld, w.o + (size_t)t * s->HS, s->HS * sizeof(float));
}

void local_attention_backward(float *dq, float *dk, float *dv, float *out, const float *dout,
                              const float *q, const float *k, const float *v, size_t ld,
                              const LocalShape *s, float *scratch, float *kept) {
    Work w = work_views(scratch, s);
    ChunkAttnShape a = kernel_shape(s);
    int HS = s->HS;
    size_t n = (size_t)s->T * HS;
    keep_views(&w, kept, s);
    gather(&w, q, k, v, ld, s);
    if (!kept) chunk_attention_forward(w.o, w.lse, &(ChunkInputs){w.q, w.k, NULL, w.v, w.pos}, &a, w.kernel);
    // delta_t = dout_t . o_t, then dout takes o's place
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < s->T; t++) {
        float *o = w.o + (size_t)t * HS;
        const float *g = dout + (size_t)t * ld;
        float dot = 0.0f;
        for (int d = 0; d < HS; d++) dot += g[d] * o[d];
        w.delta[t] = dot;
        if (out) memcpy(out + (size_t)t * ld, o, HS * sizeof(float));
        memcpy(o, g, HS * sizeof(float));
    }
    zero_floats(w.dq, 3 * n);
    ChunkGrads g = {w.dq, w.dk, w.dv};
    chunk_attention_backward(&g, &(ChunkOutGrads){w.o, NULL, w.delta, w.lse}, &(ChunkInputs){w.q, w.k, NULL, w.v, w.pos},
                             &a, w.kernel);
    // scatter back; forward: k_used = k / sqrt(HS), so dk += dk_used / sqrt(HS)
    float scale = 1.0f / sqrtf((float)HS);
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < s->T; t++)
        for (int d = 0; d < HS; d++) {
            dq[(size_t)t * ld + d] += w.dq[(size_t)t * HS + d];
            dk[(size_t)t * ld + d] += w.dk[(size_t)t * HS + d] * scale;
            dv[(size_t)t * ld + d] += w.dv[(size_t)t * HS + d];
        }
}

size_t local_decode_scratch_floats(int T) { return 2 * (size_t)T; }

void local_decode(float *out, const float *q, const float *key, const float *val, int t,
                  const LocalShape *s, float *scratch) {
    int HS = s->HS, start = (t / s->win.chunk - s->win.before) * s->win.chunk;
    if (start < 0) start = imax(0, t + start);  // Python slicing: a negative start counts from the end
    float *scores = scratch, scale = 1.0f / sqrtf((float)HS);
    int *pos = (int *)(scratch + (t + 1)), n = 0;
    for (int j = start; j <= t; j++, n++) {
        const float *k = key + (size_t)j * HS;
        float acc = 0.0f;
        for (int e = 0; e < HS; e++) acc += q[e] * (k[e] * scale);
        scores[n] = acc;
        pos[n] = j;
    }
    attend_one(out, scores, pos, n, val, HS);
}
