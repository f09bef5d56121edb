// attention_chunked.c: chunked windowed attention on products of blocks of up to 64 rows
// (gemm_block: fp32 sgemm, or bf16 in that precision).
//
// Forward: one pass over query blocks; each computes its whole score row over the
// window, so the logsumexp is exact. Backward (FlashAttention-2 style): each key block
// recomputes the probabilities of every query block that sees them (dK, dV, and, when a
// chunk is one block, dQ in the same pass: see backward_fused); otherwise a second pass
// walks query blocks for dQ. Blocks whose keys all lie beyond what all their queries may see
// (the causal and padding masks) are skipped: their probabilities are exactly 0
// (exp(-1e9 - lse) underflows), so skipping changes no bit.
#include "attention_chunked.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "gemm.h"
#include "fastmath.h"
#include "profile.h"
#include "rng.h"

#define BLOCK 64

static int block_len(const ChunkAttnShape *a) { return imin(BLOCK, a->win.chunk); }
static int blocks_per_chunk(const ChunkAttnShape *a) {
    return (a->win.chunk + block_len(a) - 1) / block_len(a);
}
static int window(const ChunkAttnShape *a) { return a->win.before + a->win.after + 1; }
static int wrap(int c, int nch) { return ((c % nch) + nch) % nch; }

float softmax_hf(float *p, const float *s, int n) {
    float mx = -INFINITY, sum = 0.0f, lse;
    for (int j = 0; j < n; j++) mx = fmaxf(mx, s[j]);
    for (int j = 0; j < n; j++) sum += p[j] = expf(s[j] - mx);
    float scale = softmax_hf_scale(mx, sum, &lse);
    for (int j = 0; j < n; j++) p[j] *= scale;
    return lse;
}

float attend_one(float *out, float *scores, const int *pos, int n, const float *val, int HS) {
    float lse = softmax_hf(scores, scores, n);
    memset(out, 0, (size_t)HS * sizeof(float));
    for (int j = 0; j < n; j++) {
        const float *v = val + (size_t)pos[j] * HS;
        for (int e = 0; e < HS; e++) out[e] += scores[j] * v[e];
    }
    return lse;
}

size_t chunk_attention_scratch_floats(const ChunkAttnShape *a) {
    size_t bq = block_len(a);
    size_t fwd = bq * window(a) * a->win.chunk + window(a) * blocks_per_chunk(a);
    size_t bwd = 2 * bq * bq + bq * a->hs;  // S, D and a key block's gradient (fused pass)
    return (fwd > bwd ? fwd : bwd) + bq * a->hs;  // + one key block (key_rows)
}

// Rows [j0, j1) of the keys: k's own rows, or, for shared query/key (k NULL), q's rows
// times kscale formed in buf (bl, HS) - the same products a stored key copy would hold,
// so the scores are bit for bit those of a stored copy, without its n * HS floats.
static const float *key_rows(float *buf, const ChunkInputs *in, int j0, int j1, int HS) {
    if (in->k) return in->k + (size_t)j0 * HS;
    for (int j = j0; j < j1; j++) {
        const float *x = in->q + (size_t)j * HS;
        float *y = buf + (size_t)(j - j0) * HS, r = in->kscale[j];
        for (int d = 0; d < HS; d++) y[d] = x[d] * r;
    }
    return buf;
}

// The value rows from j0 on, in fp32 or (the other NULL) in bf16: a product's B or B16.
static const float *value_rows(const ChunkInputs *in, int j0, int HS) {
    return in->v16 ? NULL : in->v + (size_t)j0 * HS;
}
static const uint16_t *value_rows16(const ChunkInputs *in, int j0, int HS) {
    return in->v16 ? in->v16 + (size_t)j0 * HS : NULL;
}

// Rows [r0, r1) of the items: block b of chunk c.
static void block_rows(const ChunkAttnShape *a, int blk, int *r0, int *r1) {
    int per = blocks_per_chunk(a), bl = block_len(a);
    int c = blk / per;
    *r0 = c * a->win.chunk + (blk % per) * bl;
    *r1 = imin(*r0 + bl, (c + 1) * a->win.chunk);
}

// The largest key limit (window_key_limit) of the queries in rows [r0, r1).
static int limit_max(const ChunkAttnShape *a, const int *pos, int r0, int r1) {
    int m = window_key_limit(&a->win, pos[r0]);
    for (int i = r0 + 1; i < r1; i++) m = imax(m, window_key_limit(&a->win, pos[i]));
    return m;
}

static int pos_min(const int *pos, int r0, int r1) {
    int m = pos[r0];
    for (int i = r0 + 1; i < r1; i++) m = imin(m, pos[i]);
    return m;
}

// Scores of query block [r0, r0 + m) of chunk c against its window, into S (m, W*CH): one
// product per key block that is live (live (W, per): not wholly beyond the queries' masks).
static void block_scores(float *S, char *live, float *kbuf, int r0, int m, int c, const ChunkInputs *in,
                         const ChunkAttnShape *a) {
    int CH = a->win.chunk, HS = a->hs, W = window(a), NCH = a->n / CH, per = blocks_per_chunk(a), bl = block_len(a);
    int lim = limit_max(a, in->pos, r0, r0 + m);
    for (int w = 0; w < W; w++) {
        int k0 = wrap(c + w - a->win.before, NCH) * CH;
        for (int kb = 0; kb < per; kb++) {
            int j0 = k0 + kb * bl, j1 = imin(j0 + bl, k0 + CH);
            live[w * per + kb] = pos_min(in->pos, j0, j1) <= lim;
            if (live[w * per + kb])
                gemm_block(&(GemmOp){0, 1, m, j1 - j0, HS, 1.0f, in->q + (size_t)r0 * HS, HS,
                                   key_rows(kbuf, in, j0, j1, HS), HS, 0.0f, S + (size_t)w * CH + kb * bl, W * CH});
        }
    }
}

// Query row i (item r0 + i) of the block: its masked scores s (W*CH) become probabilities
// (with dropout), and lse its logsumexp.
static void row_softmax(float *s, float *lse, const char *live, int item, int c, const ChunkInputs *in,
                        const ChunkAttnShape *a) {
    int CH = a->win.chunk, W = window(a), NCH = a->n / CH, per = blocks_per_chunk(a), bl = block_len(a);
    int qp = in->pos[item], lim = window_key_limit(&a->win, qp);
    float mx = -INFINITY;
    for (int w = 0; w < W; w++) {
        int k0 = wrap(c + w - a->win.before, NCH) * CH;
        for (int kb = 0; kb < per; kb++) {
            if (!live[w * per + kb]) continue;
            int j0 = kb * bl, j1 = imin(j0 + bl, CH);
            const int *kp = in->pos + k0;
            float *x = s + w * CH;
            int self = a->self_mask;
            #pragma omp simd reduction(max : mx)
            for (int j = j0; j < j1; j++) {
                // HF's masks replace the score: causal and padding first, self last
                float sc = kp[j] > lim ? ATTN_CAUSAL_MASK : x[j];
                sc = (self & (kp[j] == qp)) ? ATTN_SELF_MASK : sc;
                x[j] = sc;
                mx = sc > mx ? sc : mx;
            }
        }
    }
    float sum = 0.0f;
    for (int w = 0; w < W; w++)
        for (int kb = 0; kb < per; kb++) {
            if (!live[w * per + kb]) continue;
            float *x = s + w * CH + kb * bl;
            int len = imin(bl, CH - kb * bl);
            #pragma omp simd reduction(+ : sum)
            for (int j = 0; j < len; j++) {
                // a masked score's weight is exactly 0 (exp(-1e9 - lse))
                float e = x[j] == ATTN_CAUSAL_MASK ? 0.0f : exp_approx(x[j] - mx);
                x[j] = e;
                sum += e;
            }
        }
    // the backward pass recomputes p as exp(s - lse) from the same rounded lse
    float inv = softmax_hf_scale(mx, sum, lse);
    uint64_t at = (uint64_t)item * W * CH;
    for (int w = 0; w < W; w++)
        for (int kb = 0; kb < per; kb++) {
            if (!live[w * per + kb]) continue;
            float *x = s + w * CH + kb * bl;
            int len = imin(bl, CH - kb * bl);
            for (int j = 0; j < len; j++) x[j] *= inv;
            if (a->dropout > 0.0f)
                for (int j = 0; j < len; j++)
                    x[j] *= dropout_factor(a->stream, at + (size_t)w * CH + kb * bl + j, a->dropout);
        }
}

void chunk_attention_forward(float *out, float *lse, const ChunkInputs *in, const ChunkAttnShape *a,
                             float *scratch) {
    int CH = a->win.chunk, HS = a->hs, W = window(a), NCH = a->n / CH;
    int per = blocks_per_chunk(a), bl = block_len(a), nblk = NCH * per;
    size_t row = (size_t)W * CH;  // score row length
    size_t per_thread = chunk_attention_scratch_floats(a);
    double t0 = now_seconds();
    CHECK(a->n % CH == 0, "n %d not a multiple of chunk %d", a->n, CH);
    #pragma omp parallel for schedule(dynamic, 1)
    for (int blk = 0; blk < nblk; blk++) {
        float *S = scratch + per_thread * omp_get_thread_num();  // (m, W*CH)
        float *kbuf = S + per_thread - (size_t)bl * HS;          // (bl, HS) key_rows
        char *live = (char *)(S + (size_t)bl * row);              // (W, per) key blocks used
        int r0, r1;
        block_rows(a, blk, &r0, &r1);
        int m = r1 - r0, c = blk / per;
        block_scores(S, live, kbuf, r0, m, c, in, a);
        for (int i = 0; i < m; i++) row_softmax(S + i * row, &lse[r0 + i], live, r0 + i, c, in, a);
        // out = P V over the live key blocks
        float *o = out + (size_t)r0 * HS;
        memset(o, 0, (size_t)m * HS * sizeof(float));
        for (int w = 0; w < W; w++) {
            int k0 = wrap(c + w - a->win.before, NCH) * CH;
            for (int kb = 0; kb < per; kb++) {
                if (!live[w * per + kb]) continue;
                int j0 = k0 + kb * bl, j1 = imin(j0 + bl, k0 + CH);
                gemm_block(&(GemmOp){0, 0, m, HS, j1 - j0, 1.0f, S + (size_t)w * CH + kb * bl, row,
                                   value_rows(in, j0, HS), HS, 1.0f, o, HS, .B16 = value_rows16(in, j0, HS)});
            }
        }
    }
    profile_add_to(&profile_kernel_seconds, t0);
}

// One (query block, key block) pair of the backward pass. Recomputes the scores
// S = Q K^T, then P = exp(S - lse) (Pd with dropout) into S, and dS into D:
// forward: o = sum_j Pd_ij v_j and lse_i = logsumexp_j s_ij, so
// dPd_ij = do_i . v_j and ds_ij = p_ij (drop_ij dPd_ij - delta_i + dlse_i), 0 where masked.
// kj: the key rows j0..j1 (key_rows).
static void block_pair(float *S, float *D, int r0, int r1, int j0, int j1, int slot0, const ChunkOutGrads *go,
                       const ChunkInputs *in, const float *kj, const ChunkAttnShape *a) {
    int HS = a->hs, mq = r1 - r0, mk = j1 - j0;
    size_t row = (size_t)window(a) * a->win.chunk;
    const int *pos = in->pos;
    gemm_block(&(GemmOp){0, 1, mq, mk, HS, 1.0f, in->q + (size_t)r0 * HS, HS, kj, HS, 0.0f, S, mk});
    gemm_block(&(GemmOp){0, 1, mq, mk, HS, 1.0f, go->dout + (size_t)r0 * HS, HS,
                       value_rows(in, j0, HS), HS, 0.0f, D, mk, .B16 = value_rows16(in, j0, HS)});
    const int *kp = pos + j0;
    int self = a->self_mask;
    for (int i = 0; i < mq; i++) {
        int qp = pos[r0 + i], lim = window_key_limit(&a->win, qp);
        float l = go->lse[r0 + i], dl = (go->dlse ? go->dlse[r0 + i] : 0.0f) - go->delta[r0 + i];
        float *si = S + i * mk, *di = D + i * mk;
        if (a->dropout > 0.0f) {
            uint64_t item = (uint64_t)(r0 + i) * row + slot0;
            for (int j = 0; j < mk; j++) {
                int mc = kp[j] > lim, ms = self && kp[j] == qp;
                float p = mc ? 0.0f : exp_approx((ms ? ATTN_SELF_MASK : si[j]) - l);
                float drop = dropout_factor(a->stream, item + j, a->dropout);
                di[j] = mc || ms ? 0.0f : p * (drop * di[j] + dl);
                si[j] = p * drop;
            }
            continue;
        }
        // masked scores were replaced, so they pass no gradient (ds = 0)
        #pragma omp simd
        for (int j = 0; j < mk; j++) {
            int mc = kp[j] > lim, ms = self & (kp[j] == qp);
            float p = mc ? 0.0f : exp_approx((ms ? ATTN_SELF_MASK : si[j]) - l);
            di[j] = (mc | ms) ? 0.0f : p * (di[j] + dl);
            si[j] = p;
        }
    }
}

// Shared query/key: key j is x_j * ks_j with ks = lsh_key_scale(x) = (mean(x^2) + eps)^-1/2
// HS^-1/2, so d ks / dx = -ks^3 x and a key gradient g reaches x as ks g - ks^3 (x.g) x.
// Rows [j0, j1): dq += that, from g (rows of gk, HS apart).
static void key_norm_backward(float *dq, const float *gk, const ChunkInputs *in, int j0, int j1, int HS) {
    for (int j = j0; j < j1; j++) {
        const float *x = in->q + (size_t)j * HS, *g = gk + (size_t)(j - j0) * HS;
        float xg = 0.0f, ks = in->kscale[j];
        for (int d = 0; d < HS; d++) xg += x[d] * g[d];
        float k3 = ks * ks * ks * xg;
        float *out = dq + (size_t)j * HS;
        for (int d = 0; d < HS; d++) out[d] += ks * g[d] - k3 * x[d];
    }
}

// Key block kblk against every query block whose window holds it: g->dv and the key gradient
// (into g->dk rows, or, with gk, into gk (bl, HS) as it is), and, with g->dq, the queries' dq.
static void key_block(const ChunkGrads *g, float *gk, int kblk, const ChunkOutGrads *go, const ChunkInputs *in,
                      const ChunkAttnShape *a, float *S) {
    int CH = a->win.chunk, HS = a->hs, W = window(a), NCH = a->n / CH;
    int per = blocks_per_chunk(a), bl = block_len(a);
    float *D = S + (size_t)bl * bl, *kbuf = D + (size_t)bl * bl;
    int j0, j1;
    block_rows(a, kblk, &j0, &j1);
    int ck = kblk / per, kmin = pos_min(in->pos, j0, j1);
    const float *kj = key_rows(kbuf, in, j0, j1, HS);
    float *kg = gk ? gk : g->dk + (size_t)j0 * HS;
    for (int w = 0; w < W; w++) {
        int cq = wrap(ck - (w - a->win.before), NCH);
        int slot0 = w * CH + (j0 - ck * CH);
        for (int qb = 0; qb < per; qb++) {
            int r0, r1;
            block_rows(a, cq * per + qb, &r0, &r1);
            if (kmin > limit_max(a, in->pos, r0, r1)) continue;
            block_pair(S, D, r0, r1, j0, j1, slot0, go, in, kj, a);
            // forward: o = Pd v, so dv += Pd^T do; s = q k^T, so dk += dS^T q and dq += dS k
            gemm_block(&(GemmOp){1, 0, j1 - j0, HS, r1 - r0, 1.0f, S, j1 - j0,
                               go->dout + (size_t)r0 * HS, HS, 1.0f, g->dv + (size_t)j0 * HS, HS});
            gemm_block(&(GemmOp){1, 0, j1 - j0, HS, r1 - r0, 1.0f, D, j1 - j0,
                               in->q + (size_t)r0 * HS, HS, 1.0f, kg, HS});
            if (g->dq)
                gemm_block(&(GemmOp){0, 0, r1 - r0, HS, j1 - j0, 1.0f, D, j1 - j0,
                                   kj, HS, 1.0f, g->dq + (size_t)r0 * HS, HS});
        }
    }
}

// One pass when a chunk is one block (LSH's chunk of 64): key chunk c writes the dq rows of
// query chunks c - after .. c + before only, so chunks W apart (cyclically) never write the
// same rows. Phase p runs chunks p, p + W, ... in parallel; the last NCH mod W chunks, which
// the wrap brings within W of the first, run after them one by one. S and dP are computed once
// per block pair instead of once for dk, dv and again for dq, and every dq row is summed in
// the same order whatever the thread count.
static void backward_fused(const ChunkGrads *g, const ChunkOutGrads *go, const ChunkInputs *in,
                           const ChunkAttnShape *a, float *scratch) {
    int CH = a->win.chunk, HS = a->hs, W = window(a), NCH = a->n / CH, bl = block_len(a);
    int full = NCH / W * W;
    size_t per_thread = chunk_attention_scratch_floats(a);
    for (int phase = 0; phase <= W; phase++) {
        int first = phase < W ? phase : full, step = phase < W ? W : 1, end = phase < W ? full : NCH;
        #pragma omp parallel for schedule(dynamic, 1) if (phase < W)
        for (int c = first; c < end; c += step) {
            float *S = scratch + per_thread * omp_get_thread_num();
            float *gk = in->k ? NULL : S + 2 * (size_t)bl * bl + (size_t)bl * HS;  // (bl, HS)
            if (gk) memset(gk, 0, (size_t)bl * HS * sizeof(float));
            key_block(g, gk, c, go, in, a, S);
            if (gk) key_norm_backward(g->dq, gk, in, c * CH, c * CH + CH, HS);
        }
    }
}

// A chunk of several blocks: two passes, so that no two threads add to the same row.
static void backward_two_pass(const ChunkGrads *g, const ChunkOutGrads *go, const ChunkInputs *in,
                              const ChunkAttnShape *a, float *scratch) {
    // Key blocks own dk and dv rows, then query blocks own dq rows. Shared query/key: the key
    // gradient is formed in dq's rows (zero on entry), turned into the queries' by
    // key_norm_backward, then dq is added.
    int CH = a->win.chunk, HS = a->hs, W = window(a), NCH = a->n / CH;
    int per = blocks_per_chunk(a), bl = block_len(a), nblk = NCH * per;
    size_t per_thread = chunk_attention_scratch_floats(a);
    float *dq = g->dq;
    ChunkGrads keys = {NULL, in->k ? g->dk : dq, g->dv};
    #pragma omp parallel for schedule(dynamic, 1)
    for (int kblk = 0; kblk < nblk; kblk++)
        key_block(&keys, NULL, kblk, go, in, a, scratch + per_thread * omp_get_thread_num());
    if (!in->k) {
        #pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int j0, j1;
            block_rows(a, blk, &j0, &j1);
            float *gk = scratch + per_thread * omp_get_thread_num();
            memcpy(gk, dq + (size_t)j0 * HS, (size_t)(j1 - j0) * HS * sizeof(float));
            memset(dq + (size_t)j0 * HS, 0, (size_t)(j1 - j0) * HS * sizeof(float));
            key_norm_backward(dq, gk, in, j0, j1, HS);
        }
    }
    // each query block over its window; s = q k^T, so dq += dS k
    #pragma omp parallel for schedule(dynamic, 1)
    for (int blk = 0; blk < nblk; blk++) {
        float *S = scratch + per_thread * omp_get_thread_num();
        float *D = S + (size_t)bl * bl, *kbuf = D + (size_t)bl * bl;
        int r0, r1;
        block_rows(a, blk, &r0, &r1);
        int c = blk / per, lim = limit_max(a, in->pos, r0, r1);
        for (int w = 0; w < W; w++) {
            int k0 = wrap(c + w - a->win.before, NCH) * CH;
            for (int kb = 0; kb < per; kb++) {
                int j0 = k0 + kb * bl, j1 = imin(j0 + bl, k0 + CH);
                if (pos_min(in->pos, j0, j1) > lim) continue;
                const float *kj = key_rows(kbuf, in, j0, j1, HS);
                block_pair(S, D, r0, r1, j0, j1, w * CH + kb * bl, go, in, kj, a);
                gemm_block(&(GemmOp){0, 0, r1 - r0, HS, j1 - j0, 1.0f, D, j1 - j0,
                                   kj, HS, 1.0f, dq + (size_t)r0 * HS, HS});
            }
        }
    }
}

void chunk_attention_backward(const ChunkGrads *g, const ChunkOutGrads *go, const ChunkInputs *in,
                              const ChunkAttnShape *a, float *scratch) {
    CHECK(!in->k == !g->dk, "keys and key gradients go together");
    double t0 = now_seconds();
    if (blocks_per_chunk(a) == 1)
        backward_fused(g, go, in, a, scratch);
    else
        backward_two_pass(g, go, in, a, scratch);
    profile_add_to(&profile_kernel_seconds, t0);
}
