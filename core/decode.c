// decode.c: the prompt pass, the per-token step, and the three attention caches.
#include "decode.h"

#include <math.h>
#include <string.h>

#include "attention.h"
#include "common.h"
#include "ffn.h"
#include "layernorm.h"
#include "linear.h"

#define SELF_MASK (-1e5f)  // HF self_mask_value_float32

static int lsh_window(const ReformerConfig *c) { return c->lsh_chunk * (c->lsh_before + c->lsh_after + 1); }

int decoder_forward_len(const ReformerConfig *c, int n) {
    for (int L = n; L > 1; L--) {
        int ok = 1;
        for (int l = 0; l < c->n_layers; l++) {
            int ch = c->attn[l] == ATTN_LSH ? c->lsh_chunk : c->attn[l] == ATTN_LOCAL ? c->local_chunk : 0;
            if (ch && L > ch && L % ch) ok = 0;
        }
        if (ok) return L;
    }
    return 1;
}

void decoder_init(Decoder *d, Model *m, int T) {
    memset(d, 0, sizeof(*d));
    const ReformerConfig *c = &m->cfg;
    CHECK(c->causal, "cached decoding needs a causal model");
    CHECK(T <= m->T, "decoder of %d positions on a model sized for %d", T, m->T);
    int NH = c->n_heads, HS = c->d_head, NR = c->n_hashes, C = c->d_model;
    d->m = m;
    d->T = T;
    m->training = 0;
    m->step = 0;  // every step hashes with the same rotations
    size_t per_head = (size_t)NH * T * HS;
    for (int l = 0; l < c->n_layers; l++) {
        d->key[l] = xmalloc(per_head * sizeof(float));
        d->key_scale[l] = xmalloc((size_t)NH * T * sizeof(float));
        d->val[l] = xmalloc(per_head * sizeof(float));
        if (c->attn[l] != ATTN_LSH) continue;
        d->bucket[l] = xmalloc((size_t)NH * NR * T * sizeof(int));
        d->order[l] = xmalloc((size_t)NH * NR * T * sizeof(int));
        LayerShape s = model_layer_shape(m, l, T, 1);
        size_t n = (size_t)NH * HS * NR * lsh_rotation_cols(&s.attn.lsh);
        d->rot[l] = xmalloc(n * sizeof(float));
        memcpy(d->rot[l], model_layer_rotations(m, l), n * sizeof(float));
    }
    d->x1 = xmalloc((size_t)C * sizeof(float));
    d->x2 = xmalloc((size_t)C * sizeof(float));
    d->h = xmalloc((size_t)C * sizeof(float));
    d->att = xmalloc((size_t)C * sizeof(float));
    d->q = xmalloc((size_t)NH * HS * sizeof(float));
    d->o = xmalloc((size_t)NH * HS * sizeof(float));
    int nt = d->threads = threads_get();
    d->scratch_len = (size_t)imax(T, NR * lsh_window(c));
    d->scores = xmalloc((size_t)nt * d->scratch_len * sizeof(float));
    d->pos = xmalloc((size_t)nt * d->scratch_len * sizeof(int));
    d->head_out = xmalloc((size_t)nt * NR * HS * sizeof(float));
}

void decoder_free(Decoder *d) {
    for (int l = 0; l < MAX_LAYERS; l++) {
        xfree(d->key[l]);
        xfree(d->key_scale[l]);
        xfree(d->val[l]);
        xfree(d->bucket[l]);
        xfree(d->order[l]);
        xfree(d->rot[l]);
    }
    xfree(d->x1);
    xfree(d->x2);
    xfree(d->h);
    xfree(d->att);
    xfree(d->q);
    xfree(d->o);
    xfree(d->scores);
    xfree(d->pos);
    xfree(d->head_out);
    memset(d, 0, sizeof(*d));
}

static LshShape lsh_shape(const Decoder *d, int l) {
    return model_layer_shape(d->m, l, d->T, 1).attn.lsh;
}

// Projections of positions [start, start + n) from the attention inputs h (n, C) into
// the cache: LSH/full qk (HF query_key) with its key scale, local key; and values. One
// position (a decoding step) takes all heads in one matrix-vector product, which
// linear_forward splits across threads, and scatters it; a prompt goes head by head.
static void cache_projections(Decoder *d, int l, const float *h, int n, int start) {
    const ReformerConfig *c = &d->m->cfg;
    const AttnParams *p = &d->m->p.layer[l].attn;
    int NH = c->n_heads, HS = c->d_head, C = c->d_model;
    for (int which = 0; which < 2; which++) {
        const float *w = which ? p->v : c->attn[l] == ATTN_LOCAL ? p->k : p->qk;
        float *cache = which ? d->val[l] : d->key[l];
        if (n == 1) {
            float *all = d->o;  // (NH * HS) free until the heads write their outputs
            linear_forward(all, h, w, NULL, 1, C, NH * HS, 0.0f);
            for (int hd = 0; hd < NH; hd++)
                memcpy(cache + ((size_t)hd * d->T + start) * HS, all + (size_t)hd * HS, (size_t)HS * sizeof(float));
        } else {
            for (int hd = 0; hd < NH; hd++)
                linear_forward(cache + ((size_t)hd * d->T + start) * HS, h, w + (size_t)hd * HS * C, NULL, (size_t)n, C,
                               HS, 0.0f);
        }
    }
    for (int hd = 0; hd < NH; hd++)  // LSH/full keys are qk length-normalised; local ones do not use it
        for (int t = start; t < start + n; t++)
            d->key_scale[l][(size_t)hd * d->T + t] = lsh_key_scale(d->key[l] + ((size_t)hd * d->T + t) * HS, HS);
}

// Buckets of positions [0, L) and their stable order by bucket, per head and round:
// what HF caches once the length reaches the chunk length.
static void hash_all(Decoder *d, int l, int L) {
    const ReformerConfig *c = &d->m->cfg;
    LshShape s = lsh_shape(d, l);
    int NR = c->n_hashes, HS = c->d_head, T = d->T, nb = 1, b[MAX_HASHES];
    for (int f = 0; f < s.n_factors; f++) nb *= s.buckets[f];
    int *count = xmalloc((size_t)nb * sizeof(int));
    for (int hd = 0; hd < c->n_heads; hd++) {
        int *bucket = d->bucket[l] + (size_t)hd * NR * T, *order = d->order[l] + (size_t)hd * NR * T;
        const float *rot = d->rot[l] + (size_t)hd * HS * NR * lsh_rotation_cols(&s);
        for (int t = 0; t < L; t++) {
            lsh_buckets_of(b, d->key[l] + ((size_t)hd * T + t) * HS, rot, &s);
            for (int r = 0; r < NR; r++) bucket[(size_t)r * T + t] = b[r];
        }
        for (int r = 0; r < NR; r++) {  // counting sort; positions come in increasing order
            memset(count, 0, (size_t)nb * sizeof(int));
            for (int t = 0; t < L; t++) count[bucket[(size_t)r * T + t]]++;
            for (int i = 0, at = 0; i < nb; i++) {
                int n = count[i];
                count[i] = at;
                at += n;
            }
            for (int t = 0; t < L; t++) order[(size_t)r * T + count[bucket[(size_t)r * T + t]]++] = t;
        }
    }
    xfree(count);
    d->hashed[l] = 1;
}

// out (HS) = softmax(scores (n)) over the values of positions pos (n), with the
// probabilities exp(s - lse) and lse rounded to float as HF computes them. Returns lse.
static float attend(float *out, const float *scores, const int *pos, int n, const float *val, int HS) {
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) mx = fmaxf(mx, scores[j]);
    double sum = 0.0;
    for (int j = 0; j < n; j++) sum += exp((double)scores[j] - mx);
    float lse = (float)(mx + log(sum));
    memset(out, 0, (size_t)HS * sizeof(float));
    for (int j = 0; j < n; j++) {
        float p = expf(scores[j] - lse);
        const float *v = val + (size_t)pos[j] * HS;
        for (int e = 0; e < HS; e++) out[e] += p * v[e];
    }
    return lse;
}

// Score of query q against cached qk row k as a shared-QK key, k * rn (length-normalised).
static float lsh_score(const float *q, const float *k, float rn, int HS) {
    float s = 0.0f;
    for (int e = 0; e < HS; e++) s += q[e] * (k[e] * rn);
    return s;
}

// One head of an LSH or full layer for the new position t.
static void lsh_head(Decoder *d, int l, int hd, const float *q, float *out, float *scores, int *pos,
                     float *head_out) {
    const ReformerConfig *c = &d->m->cfg;
    int HS = c->d_head, T = d->T, t = d->len, NR = c->n_hashes;
    const float *key = d->key[l] + (size_t)hd * T * HS, *val = d->val[l] + (size_t)hd * T * HS;
    const float *rn = d->key_scale[l] + (size_t)hd * T;
    if (!d->hashed[l]) {  // plain: every position, self masked
        for (int j = 0; j <= t; j++) {
            scores[j] = j == t ? SELF_MASK : lsh_score(q, key + (size_t)j * HS, rn[j], HS);
            pos[j] = j;
        }
        attend(out, scores, pos, t + 1, val, HS);
        return;
    }
    LshShape s = lsh_shape(d, l);
    int b[MAX_HASHES], CH = c->lsh_chunk, W = lsh_window(c), L = t + 1;
    float lse[MAX_HASHES];
    lsh_buckets_of(b, q, d->rot[l] + (size_t)hd * HS * NR * lsh_rotation_cols(&s), &s);
    for (int r = 0; r < NR; r++) {
        int *bucket = d->bucket[l] + ((size_t)hd * NR + r) * T, *order = d->order[l] + ((size_t)hd * NR + r) * T;
        bucket[t] = b[r];
        int lo = 0, hi = t;  // first sorted slot whose bucket is larger: the newest goes last in its bucket
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (bucket[order[mid]] <= b[r]) lo = mid + 1;
            else hi = mid;
        }
        memmove(order + lo + 1, order + lo, (size_t)(t - lo) * sizeof(int));
        order[lo] = t;
        // the window of chunks around slot lo, modulo L (HF _expand_to_indices_in_relevant_chunk)
        int start = (lo / CH - c->lsh_before) * CH;
        float *sc = scores + (size_t)r * W;
        int *pr = pos + (size_t)r * W;
        for (int j = 0; j < W; j++) {
            int slot = ((start + j) % L + L) % L, p = order[slot];
            pr[j] = p;
            sc[j] = p == t ? SELF_MASK : lsh_score(q, key + (size_t)p * HS, rn[p], HS);
        }
        lse[r] = attend(head_out + (size_t)r * HS, sc, pr, W, val, HS);
    }
    // rounds weighted by exp(lse_r - logsumexp_r lse), the logsumexp rounded to float: the
    // same softmax as within a round, over the rounds' outputs (one round: weight exactly 1)
    int rounds[MAX_HASHES];
    for (int r = 0; r < NR; r++) rounds[r] = r;
    attend(out, lse, rounds, NR, head_out, HS);
}

// One head of a local layer for the new position t.
static void local_head(Decoder *d, int l, int hd, const float *q, float *out, float *scores, int *pos) {
    const ReformerConfig *c = &d->m->cfg;
    int HS = c->d_head, T = d->T, t = d->len, CH = c->local_chunk;
    const float *key = d->key[l] + (size_t)hd * T * HS, *val = d->val[l] + (size_t)hd * T * HS;
    int start = (t / CH - c->local_before) * CH;
    if (start < 0) start = imax(0, t + start);
    float scale = 1.0f / sqrtf((float)HS);
    int n = 0;
    for (int j = start; j <= t; j++, n++) {
        const float *k = key + (size_t)j * HS;
        float s = 0.0f;
        for (int e = 0; e < HS; e++) s += q[e] * (k[e] * scale);
        scores[n] = s;
        pos[n] = j;
    }
    attend(out, scores, pos, n, val, HS);
}

void decoder_prefill(Decoder *d, const int *tokens, int n, float *logits) {
    Model *m = d->m;
    const ReformerConfig *c = &m->cfg;
    int n0 = decoder_forward_len(c, n), C = c->d_model;
    CHECK(n >= 1 && n <= d->T && d->len == 0, "prompt of %d tokens for a cache of %d", n, d->T);
    model_embed(m, m->x1, tokens, n0, 0);
    memcpy(m->x2, m->x1, (size_t)n0 * C * sizeof(float));
    // decoding never runs backward: the gradient buffers serve as LayerNorm scratch
    float *h = m->dx1, *mean = m->dx2, *rstd = m->dx2 + n0;
    for (int l = 0; l < c->n_layers; l++) {
        LayerShape s = model_layer_shape(m, l, n0, 1);
        const AttnParams *p = &m->p.layer[l].attn;
        layernorm_forward(h, mean, rstd, m->x2, p->ln_w, p->ln_b, (size_t)n0, C, c->ln_eps);
        cache_projections(d, l, h, n0, 0);
        int hashes = c->attn[l] == ATTN_LSH && !s.attn.lsh.plain;
        LayerWork w = {m->attn_work, m->ffn_work};
        reversible_forward(m->x1, m->x2, m->sorted + l * m->sorted_per_layer, hashes ? d->rot[l] : NULL,
                           &m->p.layer[l], &s, model_layer_stream(m, l), &w);
        if (c->attn[l] == ATTN_LSH && n0 >= c->lsh_chunk) hash_all(d, l, n0);
    }
    d->len = n0;
    model_logits_of(m, logits, m->x1 + (size_t)(n0 - 1) * C, m->x2 + (size_t)(n0 - 1) * C);
    for (int i = n0; i < n; i++) decoder_step(d, tokens[i], logits);
}

void decoder_step(Decoder *d, int token, float *logits) {
    Model *m = d->m;
    const ReformerConfig *c = &m->cfg;
    int t = d->len, C = c->d_model, NH = c->n_heads, HS = c->d_head;
    CHECK(t < d->T, "the cache holds %d positions", d->T);
    model_embed(m, d->x1, &token, 1, t);
    memcpy(d->x2, d->x1, (size_t)C * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        LayerShape s = model_layer_shape(m, l, 1, 1);
        const AttnParams *p = &m->p.layer[l].attn;
        float mean, rstd;
        layernorm_forward(d->h, &mean, &rstd, d->x2, p->ln_w, p->ln_b, 1, C, c->ln_eps);
        cache_projections(d, l, d->h, 1, t);
        if (c->attn[l] == ATTN_LOCAL) linear_forward(d->q, d->h, p->qk, NULL, 1, C, NH * HS, 0.0f);
        #pragma omp parallel for schedule(static) num_threads(d->threads) if (NH > 1 && d->threads > 1)
        for (int hd = 0; hd < NH; hd++) {
            int me = omp_get_thread_num();
            float *q = d->q + (size_t)hd * HS, *o = d->o + (size_t)hd * HS;
            float *scores = d->scores + me * d->scratch_len;
            int *pos = d->pos + me * d->scratch_len;
            if (c->attn[l] == ATTN_LOCAL) {
                local_head(d, l, hd, q, o, scores, pos);
            } else {  // shared QK: the query is the position's own cached qk
                memcpy(q, d->key[l] + ((size_t)hd * d->T + t) * HS, (size_t)HS * sizeof(float));
                lsh_head(d, l, hd, q, o, scores, pos, d->head_out + (size_t)me * c->n_hashes * HS);
            }
        }
        linear_forward(d->att, d->o, p->o, NULL, 1, NH * HS, C, 0.0f);
        for (int i = 0; i < C; i++) d->x1[i] += d->att[i];           // y1 = x1 + F(x2)
        ffn_forward(d->x2, d->x1, &m->p.layer[l].ffn, 1, &s.ffn, m->ffn_work);  // y2 = x2 + G(y1)
        if (c->attn[l] == ATTN_LSH && !d->hashed[l] && t + 1 >= c->lsh_chunk) hash_all(d, l, t + 1);
    }
    d->len = t + 1;
    model_logits_of(m, logits, d->x1, d->x2);
}
