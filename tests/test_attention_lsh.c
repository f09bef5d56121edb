// test_attention_lsh.c: hashing, sorting, the LSH head's gradients, and LSH
// against full attention.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/attention_lsh.h"
#include "../core/common.h"
#include "../core/gemm.h"
#include "test.h"

typedef struct {
    LshShape s;
    float *qk, *v, *out, *w, *rot, *scratch;
    int *sorted;
} Ctx;

static Ctx make(LshShape s, uint64_t seed) {
    Ctx c;
    c.s = s;
    size_t n = (size_t)s.T * s.HS;
    c.qk = xmalloc(n * 4);
    c.v = xmalloc(n * 4);
    c.out = xmalloc(n * 4);
    c.w = xmalloc(n * 4);
    size_t nrot = (size_t)s.HS * s.n_hashes * lsh_rotation_cols(&s.buckets);
    c.rot = xmalloc((nrot ? nrot : 1) * 4);
    c.scratch = xmalloc(lsh_scratch_floats(&s) * 4);
    c.sorted = xmalloc((size_t)s.n_hashes * s.T * sizeof(int));
    fill_normal(c.qk, n, 1.0f, seed);
    fill_normal(c.v, n, 1.0f, seed + 1);
    fill_normal(c.w, n, 1.0f, seed + 2);
    fill_normal(c.rot, nrot, 1.0f, seed + 3);
    if (!s.plain) lsh_hash(c.sorted, c.qk, s.HS, c.rot, &c.s, c.scratch);
    return c;
}

static double head_loss(void *p) {
    Ctx *c = p;
    lsh_attention_forward(c->out, c->sorted, c->qk, c->v, c->s.HS, &c->s, c->scratch, NULL);
    return dot_loss(c->w, c->out, (size_t)c->s.T * c->s.HS);
}

static void check_grad(LshShape s, const char *what) {
    Ctx c = make(s, 7 + s.n_hashes + 10 * s.win.causal);
    size_t n = (size_t)s.T * s.HS;
    float *dqk = xcalloc(n, 4), *dv = xcalloc(n, 4);
    lsh_attention_backward(dqk, dv, NULL, c.w, c.sorted, c.qk, c.v, s.HS, &s, c.scratch, NULL);
    double ana, rel = gradcheck(head_loss, &c, c.qk, dqk, n, 1, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "%s: dqk rel %.2e (g.d %.2e)", what, rel, ana);
    rel = gradcheck(head_loss, &c, c.v, dv, n, 2, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "%s: dv rel %.2e", what, rel);
}

void test_lsh_grad(void) {
    // T, HS, NR, factors, buckets, chunk, before, after, causal, plain, dropout
    check_grad((LshShape){32, 8, 1, {1, {4, 0}}, {8, 1, 0, 1, 0}, 0, 0.0f, 1}, "1 hash causal");
    check_grad((LshShape){32, 8, 2, {1, {4, 0}}, {8, 1, 0, 1, 0}, 0, 0.0f, 2}, "2 hashes causal");
    check_grad((LshShape){32, 8, 4, {1, {8, 0}}, {8, 1, 1, 0, 0}, 0, 0.0f, 3}, "4 hashes bidirectional after 1");
    check_grad((LshShape){48, 6, 2, {2, {2, 4}}, {12, 1, 0, 1, 0}, 0, 0.2f, 4}, "factorised buckets dropout");
    check_grad((LshShape){16, 8, 2, {1, {4, 0}}, {32, 1, 0, 1, 0}, 1, 0.0f, 5}, "plain (T <= chunk)");
}

// Lengths of one hashing block, several with a short last one, and enough for threads to split.
static void check_sort(int T) {
    LshShape s = {T, 8, 3, {2, {4, 6}}, {8, 1, 0, 1, 0}, 0, 0.0f, 0};
    Ctx c = make(s, 99);
    // recompute buckets independently and check the order sorts (round, bucket, position)
    int cols = lsh_rotation_cols(&s.buckets), NB = 24;
    long prev = -1;
    char *seen = xcalloc(s.n_hashes * s.T, 1);
    for (int i = 0; i < s.n_hashes * s.T; i++) {
        int r = c.sorted[i] / s.T, t = c.sorted[i] % s.T;
        EXPECT(!seen[c.sorted[i]], "item %d twice", c.sorted[i]);
        seen[c.sorted[i]] = 1;
        int b = 0, radix = 1, off = 0;
        for (int f = 0; f < 2; f++) {
            int half = s.buckets.factor[f] / 2, arg = 0;
            float best = -INFINITY;
            for (int j = 0; j < 2 * half; j++) {
                float x = 0;
                for (int d = 0; d < s.HS; d++)
                    x += c.qk[t * s.HS + d] * c.rot[(d * s.n_hashes + r) * cols + off + j % half];
                if (j >= half) x = -x;
                if (x > best) { best = x; arg = j; }
            }
            b += radix * arg;
            radix *= s.buckets.factor[f];
            off += half;
        }
        long key = ((long)(r * NB + b)) * s.T + t;
        EXPECT(key > prev, "T %d: order broken at %d", T, i);
        prev = key;
    }
}

void test_lsh_sort_is_stable_bucket_order(void) {
    check_sort(64);
    check_sort(200);
    check_sort(1104);
}

// Past lsh_stream_bytes the passes around the kernel move rows in position order with streaming
// stores; below it they read sorted rows where they lie. Both give the same bits.
void test_lsh_streaming_moves_same_bits(void) {
    LshShape shapes[3] = {{64, 8, 2, {1, {8, 0}}, {8, 1, 0, 1, 0}, 0, 0.0f, 1},
                          {96, 12, 3, {2, {2, 4}}, {12, 1, 1, 0, 0}, 0, 0.2f, 2},
                          {16, 8, 2, {1, {4, 0}}, {32, 1, 0, 1, 0}, 1, 0.0f, 3}};
    size_t saved = lsh_stream_bytes;
    for (int k = 0; k < 3; k++) {
        LshShape s = shapes[k];
        Ctx c = make(s, 40 + k);
        size_t n = (size_t)s.T * s.HS;
        float *res[2];
        for (int st = 0; st < 2; st++) {
            lsh_stream_bytes = st ? 0 : saved;
            float *r = res[st] = xcalloc(4 * n, 4);  // out, dqk, dv, out from the backward
            lsh_attention_forward(r, c.sorted, c.qk, c.v, s.HS, &s, c.scratch, NULL);
            lsh_attention_backward(r + n, r + 2 * n, r + 3 * n, c.w, c.sorted, c.qk, c.v, s.HS, &s, c.scratch, NULL);
        }
        EXPECT(memcmp(res[0], res[1], 4 * n * 4) == 0, "shape %d: streaming moves changed the result", k);
        EXPECT(memcmp(res[0], res[0] + 3 * n, n * 4) == 0, "shape %d: backward's out differs from forward's", k);
        xfree(res[0]);
        xfree(res[1]);
    }
    lsh_stream_bytes = saved;
}

// bf16 on a rounding block kernel holds the gathered values in bf16 (v_bf16): the products read
// them as they would have rounded them, so out, dqk and dv keep their bits, moving rows in place
// or streaming, recomputing or from kept outputs (whose area then takes the value gradients' copy).
void test_lsh_bf16_values_same_bits(void) {
    char err[256];
    if (gemm_set_precision(PRECISION_BF16, err, sizeof(err)) || !gemm_block_rounds()) {
        printf("    %s\n", *err ? err : "the bf16 blocks here are sgemm: values stay fp32");
        gemm_set_precision(PRECISION_FP32, err, sizeof(err));
        return;
    }
    LshShape shapes[3] = {{64, 8, 2, {1, {8, 0}}, {8, 1, 0, 1, 0}, 0, 0.0f, 1},
                          {96, 12, 3, {2, {2, 4}}, {12, 1, 1, 0, 0}, 0, 0.2f, 2},
                          {16, 16, 2, {1, {4, 0}}, {32, 1, 0, 1, 0}, 1, 0.0f, 3}};
    size_t saved = lsh_stream_bytes;
    for (int k = 0; k < 3; k++)
        for (int st = 0; st < 2; st++)
            for (int kept = 0; kept < 2; kept++) {
                lsh_stream_bytes = st ? 0 : saved;
                LshShape s = shapes[k];
                Ctx c = make(s, 50 + k);
                size_t n = (size_t)s.T * s.HS;
                float *res[2], *keep = xmalloc(lsh_keep_floats(&s) * 4);
                size_t floats[2];
                for (int v16 = 0; v16 < 2; v16++) {
                    s.v_bf16 = v16;
                    floats[v16] = lsh_scratch_floats(&s);
                    float *r = res[v16] = xcalloc(4 * n, 4);  // out, dqk, dv, out from the backward
                    lsh_attention_forward(r, c.sorted, c.qk, c.v, s.HS, &s, c.scratch, kept ? keep : NULL);
                    lsh_attention_backward(r + n, r + 2 * n, r + 3 * n, c.w, c.sorted, c.qk, c.v, s.HS, &s, c.scratch,
                                           kept ? keep : NULL);
                }
                EXPECT(memcmp(res[0], res[1], 4 * n * 4) == 0, "shape %d, streaming %d, kept %d: bf16 values changed bits",
                       k, st, kept);
                size_t items = (size_t)lsh_items(&s) * s.HS;
                EXPECT(floats[0] - floats[1] == items - (items + 1) / 2, "shape %d: %zu vs %zu floats", k, floats[0],
                       floats[1]);
                xfree(res[0]);
                xfree(res[1]);
                xfree(keep);
            }
    lsh_stream_bytes = saved;
    gemm_set_precision(PRECISION_FP32, err, sizeof(err));
}

void test_lsh_equals_full_when_window_covers_sequence(void) {
    // one round in two chunks, each looking one back: every query sees every key once,
    // so whatever the buckets, LSH equals plain (full) attention with the same masks
    for (int causal = 0; causal <= 1; causal++) {
        LshShape s = {64, 16, 1, {1, {8, 0}}, {32, 1, 0, causal, 0}, 0, 0.0f, 0};
        Ctx c = make(s, 5 + causal);
        LshShape f = s;
        f.plain = 1;
        float *full = xmalloc((size_t)s.T * s.HS * 4);
        float *fscratch = xmalloc(lsh_scratch_floats(&f) * 4);
        lsh_attention_forward(c.out, c.sorted, c.qk, c.v, s.HS, &s, c.scratch, NULL);
        lsh_attention_forward(full, NULL, c.qk, c.v, s.HS, &f, fscratch, NULL);
        double d = max_rel_diff(c.out, full, (size_t)s.T * s.HS);
        EXPECT(d < 1e-5, "causal %d: LSH vs full %.2e", causal, d);
        // and one chunk holding the whole sequence is the plain path itself
        LshShape one = s;
        one.win.chunk = 64;
        one.plain = 1;
        lsh_attention_forward(c.out, NULL, c.qk, c.v, s.HS, &one, fscratch, NULL);
        EXPECT(max_rel_diff(c.out, full, (size_t)s.T * s.HS) == 0.0, "one chunk differs");
    }
}

void test_lsh_approaches_full_with_more_hashes(void) {
    // random data, many buckets: more rounds cover more of each query's attention mass
    double dist[4];
    int rounds[4] = {1, 2, 4, 8};
    for (int k = 0; k < 4; k++) {
        double sum = 0;
        for (int trial = 0; trial < 4; trial++) {
            LshShape s = {256, 16, rounds[k], {1, {16, 0}}, {16, 1, 0, 1, 0}, 0, 0.0f, 0};
            Ctx c = make(s, 1000 + trial);
            for (size_t i = 0; i < (size_t)s.T * s.HS; i++) c.qk[i] *= 0.5f;
            lsh_hash(c.sorted, c.qk, s.HS, c.rot, &s, c.scratch);
            LshShape f = s;
            f.plain = 1;
            float *full = xmalloc((size_t)s.T * s.HS * 4);
            float *fs = xmalloc(lsh_scratch_floats(&f) * 4);
            lsh_attention_forward(full, NULL, c.qk, c.v, s.HS, &f, fs, NULL);
            lsh_attention_forward(c.out, c.sorted, c.qk, c.v, s.HS, &s, c.scratch, NULL);
            double num = 0, den = 0;
            for (size_t i = 0; i < (size_t)s.T * s.HS; i++) {
                num += (c.out[i] - full[i]) * (double)(c.out[i] - full[i]);
                den += (double)full[i] * full[i];
            }
            sum += sqrt(num / den);
            xfree(full);
            xfree(fs);
        }
        dist[k] = sum / 4;
    }
    printf("    relative distance to full attention: 1 hash %.4f, 2 %.4f, 4 %.4f, 8 %.4f\n", dist[0],
           dist[1], dist[2], dist[3]);
    EXPECT(dist[1] < dist[0] && dist[2] < dist[1] && dist[3] < dist[2], "distance does not fall");
}

void test_lsh_default_buckets(void) {
    // B6 at 65536: 2 * 1024 -> 2^11, over the limit 2 * max(sqrt(1024), 64) = 128 -> [32, 64]
    LshBuckets b = lsh_default_buckets(65536, 64, 65536);
    EXPECT(b.n_factors == 2 && b.factor[0] == 32 && b.factor[1] == 64, "B6 65536: %d %d", b.factor[0], b.factor[1]);
    // small: T 256, chunk 64 -> 8 buckets, no factorisation
    b = lsh_default_buckets(256, 64, 256);
    EXPECT(b.n_factors == 1 && b.factor[0] == 8, "256: %d", b.factor[0]);
    // 2 * (100 / 16) = 12 -> bit_length 4 -> 8
    b = lsh_default_buckets(100, 16, 128);
    EXPECT(b.n_factors == 1 && b.factor[0] == 8, "100/16: %d", b.factor[0]);
}
