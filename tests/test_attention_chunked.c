// test_attention_chunked.c: the shared chunked kernel against central differences
// and against a plain O(n^2) reference written out in full.
#include <math.h>
#include <string.h>

#include "../core/attention_chunked.h"
#include "../core/attention_lsh.h"
#include "../core/common.h"
#include "../core/gemm.h"
#include "../core/rng.h"
#include "test.h"

typedef struct {
    ChunkAttnShape a;
    float *q, *k, *v, *out, *lse, *wo, *wl, *scratch;
    int *pos;
} Ctx;

static double kernel_loss(void *p) {
    Ctx *c = p;
    chunk_attention_forward(c->out, c->lse, &(ChunkInputs){c->q, c->k, NULL, c->v, c->pos}, &c->a, c->scratch);
    return dot_loss(c->wo, c->out, (size_t)c->a.n * c->a.hs) + dot_loss(c->wl, c->lse, c->a.n);
}

static Ctx make(ChunkAttnShape a, uint64_t seed) {
    Ctx c;
    c.a = a;
    size_t nh = (size_t)a.n * a.hs;
    c.q = xmalloc(nh * 4);
    c.k = xmalloc(nh * 4);
    c.v = xmalloc(nh * 4);
    c.out = xmalloc(nh * 4);
    c.lse = xmalloc(a.n * 4);
    c.wo = xmalloc(nh * 4);
    c.wl = xmalloc(a.n * 4);
    c.pos = xmalloc(a.n * sizeof(int));
    c.scratch = xmalloc(chunk_attention_scratch_floats(&a) * threads_get() * 4);
    fill_normal(c.q, nh, 1.0f, seed);
    fill_normal(c.k, nh, 1.0f, seed + 1);
    fill_normal(c.v, nh, 1.0f, seed + 2);
    fill_normal(c.wo, nh, 1.0f, seed + 3);
    fill_normal(c.wl, a.n, 1.0f, seed + 4);
    // positions as LSH leaves them: a permutation of rounds, each round 0..T-1
    Rng r;
    rng_seed(&r, seed + 5);
    for (int i = 0; i < a.n; i++) c.pos[i] = i % (a.n / 2 > 0 ? a.n / 2 : 1);
    for (int i = a.n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, i + 1), t = c.pos[i];
        c.pos[i] = c.pos[j];
        c.pos[j] = t;
    }
    return c;
}

// The kernel written the obvious way: every query, every window slot, no blocks.
static void reference(Ctx *c, float *out, float *lse) {
    ChunkAttnShape *a = &c->a;
    int CH = a->win.chunk, NCH = a->n / CH, W = a->win.before + a->win.after + 1, HS = a->hs;
    double *s = xmalloc(sizeof(double) * W * CH);
    for (int i = 0; i < a->n; i++) {
        int ci = i / CH;
        double mx = -INFINITY;
        for (int w = 0; w < W; w++)
            for (int j = 0; j < CH; j++) {
                int kj = (((ci + w - a->win.before) % NCH + NCH) % NCH) * CH + j;
                double d = 0;
                for (int e = 0; e < HS; e++) d += (double)c->q[i * HS + e] * c->k[kj * HS + e];
                // padding (positions >= valid) is masked as a key for real queries; a padding
                // query sees what a causal one sees
                int pad_q = a->win.valid && c->pos[i] >= a->win.valid;
                if ((a->win.causal || pad_q) && c->pos[kj] > c->pos[i]) d = -1e9;
                if (!a->win.causal && !pad_q && a->win.valid && c->pos[kj] >= a->win.valid) d = -1e9;
                if (a->self_mask && c->pos[kj] == c->pos[i]) d = -1e5;
                s[w * CH + j] = d;
                mx = fmax(mx, d);
            }
        double sum = 0;
        for (int x = 0; x < W * CH; x++) sum += exp(s[x] - mx);
        // HF's p = exp(s - lse) with lse a float (see chunk_attention_forward)
        lse[i] = (float)(mx + log(sum));
        for (int e = 0; e < HS; e++) {
            double o = 0;
            for (int w = 0; w < W; w++)
                for (int j = 0; j < CH; j++) {
                    int kj = (((ci + w - a->win.before) % NCH + NCH) % NCH) * CH + j;
                    double p = exp(s[w * CH + j] - (double)lse[i]);
                    if (a->dropout > 0)
                        p *= dropout_factor(a->stream, (uint64_t)i * W * CH + w * CH + j, a->dropout);
                    o += p * c->v[kj * HS + e];
                }
            out[i * HS + e] = (float)o;
        }
    }
    xfree(s);
}

static void check(ChunkAttnShape a, const char *what) {
    Ctx c = make(a, 1000 + a.n + a.win.chunk);
    size_t nh = (size_t)a.n * a.hs;
    float *ro = xmalloc(nh * 4), *rl = xmalloc(a.n * 4);
    kernel_loss(&c);
    reference(&c, ro, rl);
    EXPECT(max_rel_diff(c.out, ro, nh) < 1e-5, "%s: out differs from reference by %.2e", what,
           max_rel_diff(c.out, ro, nh));
    EXPECT(max_rel_diff(c.lse, rl, a.n) < 1e-5, "%s: lse differs by %.2e", what,
           max_rel_diff(c.lse, rl, a.n));
    float *dq = xcalloc(nh, 4), *dk = xcalloc(nh, 4), *dv = xcalloc(nh, 4), *delta = xmalloc(a.n * 4);
    for (int i = 0; i < a.n; i++) delta[i] = (float)dot_loss(c.wo + (size_t)i * a.hs, c.out + (size_t)i * a.hs, a.hs);
    chunk_attention_backward(&(ChunkGrads){dq, dk, dv}, &(ChunkOutGrads){c.wo, c.wl, delta, c.lse},
                             &(ChunkInputs){c.q, c.k, NULL, c.v, c.pos}, &c.a, c.scratch);
    float *xs[3] = {c.q, c.k, c.v}, *gs[3] = {dq, dk, dv};
    const char *names[3] = {"dq", "dk", "dv"};
    for (int i = 0; i < 3; i++) {
        double ana, rel = gradcheck(kernel_loss, &c, xs[i], gs[i], nh, 50 + i, &ana);
        EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "%s: %s rel %.2e (g.d %.2e)", what, names[i], rel, ana);
    }
}

void test_chunked_attention_grad(void) {
    // (n, hs, chunk, before, after, causal, self, dropout)
    check((ChunkAttnShape){32, 8, {8, 1, 0, 1, 0}, 1, 0.0f, 1}, "causal self 1 back");
    check((ChunkAttnShape){32, 8, {8, 1, 1, 0, 0}, 1, 0.0f, 2}, "bidirectional 1 back 1 ahead");
    check((ChunkAttnShape){24, 5, {24, 0, 0, 1, 0}, 0, 0.0f, 3}, "plain causal");
    check((ChunkAttnShape){40, 6, {10, 2, 0, 1, 0}, 1, 0.25f, 4}, "dropout 2 back");
    check((ChunkAttnShape){140, 4, {70, 1, 0, 1, 0}, 1, 0.0f, 5}, "chunk of ragged 64-blocks");
    check((ChunkAttnShape){16, 4, {8, 1, 1, 0, 0}, 0, 0.0f, 6}, "window wraps onto itself");
    check((ChunkAttnShape){32, 8, {8, 1, 1, 0, 11}, 1, 0.0f, 7}, "bidirectional, padding from 11");
    check((ChunkAttnShape){40, 6, {10, 2, 0, 0, 13}, 0, 0.2f, 8}, "padding from 13, dropout");
}

// Shared query/key (k NULL, keys = q * kscale formed per block) against the same keys stored:
// the forward must agree bit for bit (LSH loses nothing by not storing its normalised keys), and
// the backward's dq must equal the stored-key dq plus the key gradient carried through the
// scale (ks g - ks^3 (x.g) x, checked here with the scale's own formula). Shapes: one block a
// chunk (the one-pass backward, with dropout and with a window that wraps onto itself) and
// 70-item chunks (two passes).
void test_chunked_attention_key_scale_is_a_stored_copy(void) {
    ChunkAttnShape shapes[] = {{140, 8, {70, 1, 0, 1, 0}, 1, 0.0f, 1}, {64, 8, {16, 1, 1, 0, 0}, 1, 0.2f, 2},
                               {24, 5, {24, 0, 0, 1, 0}, 1, 0.0f, 3}, {48, 8, {16, 2, 1, 1, 0}, 1, 0.0f, 4}};
    for (int sh = 0; sh < 4; sh++) {
        ChunkAttnShape a = shapes[sh];
        Ctx c = make(a, 77 + sh);
        size_t nh = (size_t)a.n * a.hs;
        float *scale = xmalloc(a.n * 4), *out2 = xmalloc(nh * 4), *lse2 = xmalloc(a.n * 4);
        for (int i = 0; i < a.n; i++) {  // LSH's own key scale, so the chain rule applies
            scale[i] = lsh_key_scale(c.q + (size_t)i * a.hs, a.hs);
            for (int d = 0; d < a.hs; d++) c.k[(size_t)i * a.hs + d] = c.q[(size_t)i * a.hs + d] * scale[i];
        }
        ChunkInputs stored = {c.q, c.k, NULL, c.v, c.pos}, shared = {c.q, NULL, scale, c.v, c.pos};
        chunk_attention_forward(c.out, c.lse, &stored, &a, c.scratch);
        chunk_attention_forward(out2, lse2, &shared, &a, c.scratch);
        EXPECT(!memcmp(c.out, out2, nh * 4) && !memcmp(c.lse, lse2, a.n * 4), "shape %d: forward differs", sh);
        float *dq = xcalloc(nh, 4), *dk = xcalloc(nh, 4), *dv = xcalloc(nh, 4);
        float *dq2 = xcalloc(nh, 4), *dv2 = xcalloc(nh, 4);
        ChunkOutGrads go = {c.wo, c.wl, c.wl, c.lse};
        chunk_attention_backward(&(ChunkGrads){dq, dk, dv}, &go, &stored, &a, c.scratch);
        chunk_attention_backward(&(ChunkGrads){dq2, NULL, dv2}, &go, &shared, &a, c.scratch);
        for (int i = 0; i < a.n; i++) {
            const float *x = c.q + (size_t)i * a.hs, *g = dk + (size_t)i * a.hs;
            double xg = 0, ks = scale[i];
            for (int d = 0; d < a.hs; d++) xg += (double)x[d] * g[d];
            for (int d = 0; d < a.hs; d++) dq[(size_t)i * a.hs + d] += (float)(ks * g[d] - ks * ks * ks * xg * x[d]);
        }
        EXPECT(max_rel_diff(dq2, dq, nh) < 1e-5, "shape %d: dq differs by %.2e", sh, max_rel_diff(dq2, dq, nh));
        EXPECT(max_rel_diff(dv2, dv, nh) < 1e-6, "shape %d: dv differs by %.2e", sh, max_rel_diff(dv2, dv, nh));
        float *bufs[] = {scale, out2, lse2, dq, dk, dv, dq2, dv2};
        for (int i = 0; i < 8; i++) xfree(bufs[i]);
    }
}

// The one-pass backward sums each dq row in an order fixed by the shape: 1, 2, 3 and 5
// threads give the same bits.
void test_chunked_attention_backward_any_team(void) {
    ChunkAttnShape a = {320, 8, {16, 1, 0, 1, 0}, 1, 0.1f, 9};
    Ctx c = make(a, 5);
    size_t nh = (size_t)a.n * a.hs;
    float *ref[3] = {xcalloc(nh, 4), xcalloc(nh, 4), xcalloc(nh, 4)};
    int teams[4] = {1, 2, 3, 5};
    kernel_loss(&c);
    for (int t = 0; t < 4; t++) {
        threads_set(teams[t]);
        float *scratch = xmalloc(chunk_attention_scratch_floats(&a) * threads_get() * 4);
        float *g[3] = {xcalloc(nh, 4), xcalloc(nh, 4), xcalloc(nh, 4)};
        chunk_attention_backward(&(ChunkGrads){g[0], g[1], g[2]}, &(ChunkOutGrads){c.wo, c.wl, c.wl, c.lse},
                                 &(ChunkInputs){c.q, c.k, NULL, c.v, c.pos}, &a, scratch);
        for (int i = 0; i < 3; i++) {
            if (t == 0) memcpy(ref[i], g[i], nh * 4);
            EXPECT(!memcmp(ref[i], g[i], nh * 4), "%d threads: gradient %d differs from 1 thread", teams[t], i);
            xfree(g[i]);
        }
        xfree(scratch);
    }
    threads_set(2);
}

// The largest |x - y| over the largest |y|: an error on the scale of the whole tensor.
static double scaled_diff(const float *x, const float *y, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)x[i] - y[i]));
        m = fmax(m, fabs((double)y[i]));
    }
    return d / fmax(m, 1e-30);
}

// bf16 block products (gemm_block): the kernel's outputs and gradients stay within a few of bf16's
// roundings (2^-8) of fp32's, and do differ (the bf16 path ran); where the blocks stay on sgemm (a
// CPU with AMX), they equal fp32's. Shapes: LSH's 64-item chunks of
// d_head 64, local chunks of 128 (two blocks), ragged blocks, padding, dropout.
void test_chunked_attention_bf16_near_fp32(void) {
    char err[256];
    if (gemm_set_precision(PRECISION_BF16, err, sizeof(err))) {
        printf("    skipped: %s (test_gemm checks the refusal)\n", err);
        return;
    }
    gemm_set_precision(PRECISION_FP32, err, sizeof(err));
    ChunkAttnShape shapes[] = {{512, 64, {64, 1, 0, 1, 0}, 1, 0.0f, 1}, {512, 64, {128, 1, 1, 0, 400}, 0, 0.0f, 2},
                               {140, 24, {70, 1, 0, 1, 0}, 1, 0.1f, 3}};
    double worst = 0;
    int sgemm = !strcmp(gemm_block_backend(PRECISION_BF16), "openblas");
    for (int sh = 0; sh < 3; sh++) {
        ChunkAttnShape a = shapes[sh];
        Ctx c = make(a, 300 + sh);
        size_t nh = (size_t)a.n * a.hs;
        for (size_t i = 0; i < nh; i++) c.q[i] /= sqrtf((float)a.hs);  // scores of unit scale, as d_head^-1/2 makes them
        float *r[2][5];  // out, lse, dq, dk, dv in fp32, then bf16
        for (int p = 0; p < 2; p++) {
            gemm_set_precision(p ? PRECISION_BF16 : PRECISION_FP32, err, sizeof(err));
            for (int i = 0; i < 5; i++) r[p][i] = xcalloc(i == 1 ? (size_t)a.n : nh, 4);
            ChunkInputs in = {c.q, c.k, NULL, c.v, c.pos};
            chunk_attention_forward(r[p][0], r[p][1], &in, &a, c.scratch);
            chunk_attention_backward(&(ChunkGrads){r[p][2], r[p][3], r[p][4]},
                                     &(ChunkOutGrads){c.wo, c.wl, c.wl, r[p][1]}, &in, &a, c.scratch);
        }
        gemm_set_precision(PRECISION_FP32, err, sizeof(err));
        const char *names[5] = {"out", "lse", "dq", "dk", "dv"};
        for (int i = 0; i < 5; i++) {
            size_t n = i == 1 ? (size_t)a.n : nh;
            double e = scaled_diff(r[1][i], r[0][i], n);
            worst = fmax(worst, e);
            if (sgemm)
                EXPECT(e == 0, "shape %d: sgemm blocks in bf16: %s off fp32 by %.2e", sh, names[i], e);
            else
                EXPECT(e < 4 * 0x1p-8 && e > 0, "shape %d: bf16 %s off fp32 by %.2e of its scale", sh, names[i], e);
            xfree(r[0][i]);
            xfree(r[1][i]);
        }
    }
    printf("    bf16 (blocks on %s) against fp32: worst %.2e of a tensor's scale\n", gemm_block_backend(PRECISION_BF16),
           worst);
}
