// ffn.c: HuggingFace ChunkReformerFeedForward: LayerNorm, dense + dropout +
// activation (ReformerFeedForwardDense), dense + dropout (ReformerFeedForwardOutput).
#include "ffn.h"

#include <math.h>

#include "common.h"
#include "gemm.h"
#include "fastmath.h"
#include "layernorm.h"
#include "linear.h"
#include "profile.h"
#include "rng.h"

// Dropout sites inside the block, mixed into the stream.
enum { SITE_DENSE = 1, SITE_OUT = 2 };

size_t ffn_scratch_floats(const FfnShape *s) {
    size_t m = (size_t)s->chunk;
    return 2 * m * s->C + 2 * m * s->F + 2 * m;
}

// HF "gelu" is the erf form (not the tanh approximation); erf_approx is within 5e-7.
static inline float gelu(float x) { return 0.5f * x * (1.0f + erf_approx(x * 0.70710678118654752f)); }

static inline float gelu_grad(float x) {
    return 0.5f * (1.0f + erf_approx(x * 0.70710678118654752f)) + x * exp_approx(-0.5f * x * x) * 0.39894228040143268f;
}

// z = act(a) over n values, or with z16 the same rounded to bf16 as it is written (the rounding
// the product reading z would apply: one pass over z fewer). One loop per activation, on restrict
// pointers, so each vectorises (a per-element switch through the struct kept gcc from it: 12% of
// a step).
static void act_forward(float *restrict z, uint16_t *restrict z16, const float *restrict a, size_t n, int act) {
    double t0 = now_seconds();
    if (act == ACT_RELU && z16) {
        #pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) z16[i] = bf16_round(a[i] > 0.0f ? a[i] : 0.0f);
    } else if (act == ACT_RELU) {
        #pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) z[i] = a[i] > 0.0f ? a[i] : 0.0f;
    } else if (z16) {
        #pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) z16[i] = bf16_round(gelu(a[i]));
    } else {
        #pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) z[i] = gelu(a[i]);
    }
    profile_add_to(&profile_act_seconds, t0);
}

// dz *= act'(a) over n values.
static void act_backward(float *restrict dz, const float *restrict a, size_t n, int act) {
    double t0 = now_seconds();
    if (act == ACT_RELU) {
        #pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) dz[i] *= a[i] > 0.0f ? 1.0f : 0.0f;
    } else {
        #pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) dz[i] *= gelu_grad(a[i]);
    }
    profile_add_to(&profile_act_seconds, t0);
}

// Element-wise passes over a chunk (a million floats at chunk 1024): split over the threads,
// which at 16 threads took them from 15% of a B6 step to noise. Each element is computed
// alone, so the split changes no bit.

// y += sign * g over n values.
static void add_to(float *restrict y, const float *restrict g, float sign, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) y[i] += sign * g[i];
}

static void copy(float *restrict y, const float *restrict x, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i];
}

// x *= the dropout mask of elements first .. first + n - 1 of stream st.
static void drop(float *x, uint64_t st, size_t first, size_t n, float rate) {
    #pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= dropout_factor(st, first + i, rate);
}

// Scratch layout for a chunk of m positions.
typedef struct {
    float *h;      // (m, C) LayerNorm output; later dh
    float *a;      // (m, F) pre-activation after dropout
    float *z;      // (m, F) activation; later dz, da
    float *g;      // (m, C) block output; later dg
    float *mean;   // (m)
    float *rstd;   // (m)
    // in bf16 precision (chunks of more than one row): h and z held rounded to bf16 in their
    // buffers, which is how every product reads them; else NULL
    uint16_t *h16, *z16;
} Chunk;

// The bf16 views of a chunk of m rows: in bf16 precision, where a chunk of one row (cached
// decoding) still runs fp32 (linear's one-row path).
static void hold_bf16(Chunk *k, size_t m) {
    int bf16 = gemm_precision() == PRECISION_BF16 && m > 1;
    k->h16 = bf16 ? (uint16_t *)k->h : NULL;
    k->z16 = bf16 ? (uint16_t *)k->z : NULL;
}

static Chunk chunk_views(float *scratch, const FfnShape *s) {
    size_t m = (size_t)s->chunk;
    Chunk k;
    k.h = scratch;
    k.a = k.h + m * s->C;
    k.z = k.a + m * s->F;
    k.g = k.z + m * s->F;
    k.mean = k.g + m * s->C;
    k.rstd = k.mean + m;
    return k;
}

size_t ffn_keep_floats(const FfnShape *s, size_t N) { return N * (s->C + s->F + 2); }

// With keep (N positions: h (N, C), a (N, F), mean (N), rstd (N)), the chunk at n0 keeps its
// LayerNorm output and statistics and its pre-activation there instead of in scratch.
static Chunk keep_views(Chunk k, float *keep, size_t N, size_t n0, const FfnShape *s) {
    if (!keep) return k;
    k.h = keep + n0 * s->C;
    k.a = keep + N * s->C + n0 * s->F;
    k.mean = keep + N * (s->C + s->F) + n0;
    k.rstd = k.mean + N;
    return k;
}

// g = G(inp[n0 : n0+m]) into k->g, keeping what backward needs in k.
// In bf16 h is rounded once by way of g, free until the block output, and z as the activation
// writes it.
static void chunk_forward(Chunk *k, const float *inp, const FfnParams *w, size_t n0, size_t m,
                          const FfnShape *s) {
    int C = s->C, F = s->F;
    if (k->h16) {
        layernorm_forward_bf16(k->h16, k->g, k->mean, k->rstd, inp + n0 * C, w->ln_w, w->ln_b, m, C, s->eps);
        linear_forward_bf16(k->a, k->h16, w->w1, w->b1, m, C, F);
    } else {
        layernorm_forward(k->h, k->mean, k->rstd, inp + n0 * C, w->ln_w, w->ln_b, m, C, s->eps);
        linear_forward(k->a, k->h, w->w1, w->b1, m, C, F, 0.0f);
    }
    uint64_t st1 = hash_mix(s->stream ^ SITE_DENSE), st2 = hash_mix(s->stream ^ SITE_OUT);
    if (s->dropout > 0.0f) drop(k->a, st1, n0 * F, m * F, s->dropout);
    act_forward(k->z, k->z16, k->a, m * F, s->act);
    if (k->z16) linear_forward_bf16(k->g, k->z16, w->w2, w->b2, m, F, C);
    else linear_forward(k->g, k->z, w->w2, w->b2, m, F, C, 0.0f);
    if (s->dropout > 0.0f) drop(k->g, st2, n0 * C, m * C, s->dropout);
}

void ffn_forward(float *out, const float *inp, const FfnParams *w, size_t N,
                 const FfnShape *s, float *scratch, float *keep) {
    Chunk scr = chunk_views(scratch, s);
    for (size_t n0 = 0; n0 < N; n0 += s->chunk) {
        size_t m = N - n0 < (size_t)s->chunk ? N - n0 : (size_t)s->chunk;
        Chunk k = keep_views(scr, keep, N, n0, s);
        hold_bf16(&k, m);
        chunk_forward(&k, inp, w, n0, m, s);
        add_to(out + n0 * s->C, k.g, 1.0f, m * s->C);
    }
}

void ffn_backward(float *dinp, FfnParams *grad, float *y, const float *dout, const float *inp,
                  const FfnParams *w, size_t N, const FfnShape *s, float *scratch, const float *kept) {
    int C = s->C, F = s->F;
    CHECK(!(y && kept), "the reversible inverse needs the recompute");
    Chunk scr = chunk_views(scratch, s);
    uint64_t st1 = hash_mix(s->stream ^ SITE_DENSE), st2 = hash_mix(s->stream ^ SITE_OUT);
    for (size_t n0 = 0; n0 < N; n0 += s->chunk) {
        size_t m = N - n0 < (size_t)s->chunk ? N - n0 : (size_t)s->chunk;
        // kept is read only: the gradients below go to scratch
        Chunk k = keep_views(scr, (float *)kept, N, n0, s);
        hold_bf16(&k, m);
        if (kept) act_forward(k.z, k.z16, k.a, m * F, s->act);  // z = act(a): element-wise, not kept
        else chunk_forward(&k, inp, w, n0, m, s);
        if (y) add_to(y + n0 * C, k.g, -1.0f, m * C);  // reversible inverse: x2 = y2 - G(y1)
        // forward: g = drop2(z W2^T + b2), so dg = dout * mask2; dW2 += dg^T z; dz = dg W2
        copy(k.g, dout + n0 * C, m * C);
        if (s->dropout > 0.0f) drop(k.g, st2, n0 * C, m * C, s->dropout);
        if (k.z16) linear_backward_bf16(NULL, grad->w2, grad->b2, k.g, k.z16, w->w2, m, F, C);
        else linear_backward(NULL, grad->w2, grad->b2, k.g, k.z, w->w2, m, F, C);
        linear_input_grad(k.z, k.g, w->w2, F, m, F, C);  // over z (and z16): read above
        // forward: z = act(a), a = drop1(h W1^T + b1), so da = dz * act'(a) * mask1
        act_backward(k.z, k.a, m * F, s->act);
        if (s->dropout > 0.0f) drop(k.z, st1, n0 * F, m * F, s->dropout);
        // forward: a = h W1^T + b1, so dW1 += da^T h; dh = da W1
        if (k.h16) linear_backward_bf16(NULL, grad->w1, grad->b1, k.z, k.h16, w->w1, m, C, F);
        else linear_backward(NULL, grad->w1, grad->b1, k.z, k.h, w->w1, m, C, F);
        linear_input_grad(k.g, k.z, w->w1, C, m, C, F);
        // forward: h = LN(inp)
        layernorm_backward(dinp + n0 * C, grad->ln_w, grad->ln_b, k.g, inp + n0 * C, k.mean,
                           k.rstd, w->ln_w, m, C);
    }
}
