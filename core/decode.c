// decode.c: the prompt pass, the per-token step, and the caches of the three attention
// kinds; each kind's per-token attention is its own file's (lsh_decode, local_decode).
#include "decode.h"

#include <string.h>

#include "attention.h"
#include "common.h"
#include "ffn.h"
#include "layernorm.h"
#include "linear.h"

int decoder_forward_len(const ReformerConfig *c, int n) {
    int L = n;
    while (L > 1 && plan_length_misfit(c, L)) L--;
    return L;
}

static const LshShape *lsh_shape(const Decoder *d, int l) { return &d->m->spec.shape[l].attn.lsh; }

void decoder_init(Decoder *d, Model *m, int T, const float *const *rotations) {
    memset(d, 0, sizeof(*d));
    const ReformerConfig *c = &m->spec.cfg;
    CHECK(c->causal, "cached decoding needs a causal model");
    CHECK(T <= m->spec.T, "decoder of %d positions on a model sized for %d", T, m->spec.T);
    int NH = c->n_heads, HS = c->d_head, NR = c->n_hashes, C = c->d_model;
    d->m = m;
    d->T = T;
    ForwardArgs a = {.rotations = rotations};  // decoding's inputs: no dropout, step 0's rotations
    size_t per_head = (size_t)NH * T * HS, most = local_decode_scratch_floats(T);
    for (int l = 0; l < c->n_layers; l++) {
        d->key[l] = xmalloc(per_head * sizeof(float));
        d->key_scale[l] = xmalloc((size_t)NH * T * sizeof(float));
        d->val[l] = xmalloc(per_head * sizeof(float));
        size_t lsh = lsh_decode_scratch_floats(lsh_shape(d, l), T);
        if (lsh > most) most = lsh;
        if (c->attn[l] != ATTN_LSH) continue;
        d->bucket[l] = xmalloc((size_t)NH * NR * T * sizeof(int));
        d->order[l] = xmalloc((size_t)NH * NR * T * sizeof(int));
        size_t n = (size_t)NH * HS * plan_rotation_cols(c, T);
        d->rot[l] = xmalloc(n * sizeof(float));
        const float *given = model_layer_rotations(m, &a, l, d->rot[l]);
        if (given != d->rot[l]) memcpy(d->rot[l], given, n * sizeof(float));
    }
    d->x1 = xmalloc((size_t)C * sizeof(float));
    d->x2 = xmalloc((size_t)C * sizeof(float));
    d->h = xmalloc((size_t)C * sizeof(float));
    d->att = xmalloc((size_t)C * sizeof(float));
    d->q = xmalloc((size_t)NH * HS * sizeof(float));
    d->o = xmalloc((size_t)NH * HS * sizeof(float));
    d->threads = d->team = threads_get();
    // the prompt pass's own buffers: one sequence of up to T tokens, kernels split over threads
    plan_model(&d->spec, c, 1, T, m->spec.seed, EXEC_SPLIT_KERNELS);
    activations_init(&d->act, &d->spec);
    workspace_init(&d->work, &d->spec);
    d->scratch_len = most;
    d->scratch = xmalloc((size_t)d->threads * most * sizeof(float));
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
    xfree(d->scratch);
    activations_free(&d->act);
    workspace_free(&d->work);
    memset(d, 0, sizeof(*d));
}

// Head hd's cache of LSH/full layer l.
static LshHeadCache head_cache(const Decoder *d, int l, int hd) {
    const ReformerConfig *c = &d->m->spec.cfg;
    size_t rows = (size_t)hd * d->T * c->d_head, rounds = (size_t)hd * c->n_hashes * d->T;
    LshHeadCache h = {d->key[l] + rows, d->key_scale[l] + (size_t)hd * d->T, d->val[l] + rows,
                      d->bucket[l] ? d->bucket[l] + rounds : NULL, d->order[l] ? d->order[l] + rounds : NULL, d->T};
    return h;
}

static const float *head_rotations(const Decoder *d, int l, int hd) {
    const LshShape *s = lsh_shape(d, l);
    return d->rot[l] + (size_t)hd * s->HS * s->n_hashes * lsh_rotation_cols(&s->buckets);
}

// Projections of positions [start, start + n) from the attention inputs h (n, C) into
// the cache: LSH/full qk (HF query_key) with its key scale, local key; and values. One
// position (a decoding step) takes all heads in one matrix-vector product, which
// linear_forward splits across threads, and scatters it; a prompt goes head by head.
static void cache_projections(Decoder *d, int l, const float *h, int n, int start) {
    const ReformerConfig *c = &d->m->spec.cfg;
    const AttnParams *p = &d->m->w.p.layer[l].attn;
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

// Buckets of positions [0, L) and their order, every head: what HF caches once the
// length reaches the chunk length.
static void hash_all(Decoder *d, int l, int L) {
    const LshShape *s = lsh_shape(d, l);
    int *count = xmalloc((size_t)lsh_bucket_count(&s->buckets) * sizeof(int));
    for (int hd = 0; hd < d->m->spec.cfg.n_heads; hd++) {
        LshHeadCache h = head_cache(d, l, hd);
        lsh_cache_hash(&h, L, head_rotations(d, l, hd), s, count);
    }
    xfree(count);
    d->hashed[l] = 1;
}

void decoder_prefill(Decoder *d, const int *tokens, int n, float *logits) {
    Model *m = d->m;
    const ReformerConfig *c = &m->spec.cfg;
    int n0 = decoder_forward_len(c, n), C = c->d_model;
    CHECK(n >= 1 && n <= d->T && d->len == 0, "prompt of %d tokens for a cache of %d", n, d->T);
    Activations *a = &d->act;
    ThreadScratch w = plan_scratch_views(&d->spec, d->work.shared);
    model_embed(m, a->x1, tokens, n0, 0);
    memcpy(a->x2, a->x1, (size_t)n0 * C * sizeof(float));
    // the prompt pass runs no backward: its gradient halves serve as LayerNorm scratch
    float *h = a->dx1, *mean = a->dx2, *rstd = a->dx2 + n0;
    for (int l = 0; l < c->n_layers; l++) {
        const AttnParams *p = &m->w.p.layer[l].attn;
        layernorm_forward(h, mean, rstd, a->x2, p->ln_w, p->ln_b, (size_t)n0, C, c->ln_eps);
        cache_projections(d, l, h, n0, 0);
        LayerPass pass = {n0, 1, 0, 0, 0, NULL};
        BucketOrder order = {a->sorted + l * a->sorted_per_layer, c->attn[l] == ATTN_LSH && n0 > c->lsh_chunk, d->rot[l]};
        reversible_forward(a->x1, a->x2, &order, &m->w.p.layer[l], &d->spec.shape[l], &pass, &w.layer, NULL);
        if (c->attn[l] == ATTN_LSH && n0 >= c->lsh_chunk) hash_all(d, l, n0);
    }
    d->len = n0;
    model_logits_of(m, logits, a->x1 + (size_t)(n0 - 1) * C, a->x2 + (size_t)(n0 - 1) * C, w.head);
    for (int i = n0; i < n; i++) decoder_step(d, tokens[i], logits);
}

// A token's work is about a millisecond in many short parallel regions, so when another busy
// process takes a core, every barrier waits for a descheduled thread: 2 threads next to one
// busy process decoded at a quarter of their solo rate, 1 thread at 58% of it. So every
// PROBE_EVERY tokens the step times PROBE_TOKENS tokens with one thread and as many with all,
// and keeps the faster team until the next probe. The results do not depend on the team.
#define PROBE_EVERY 256
#define PROBE_TOKENS 8

static int probe_team(Decoder *d, int t) {
    int phase = t % PROBE_EVERY;
    if (d->threads == 1 || phase > 2 * PROBE_TOKENS) return d->team;
    if (phase == 2 * PROBE_TOKENS) {
        d->team = d->probe_s[0] < d->probe_s[1] ? 1 : d->threads;
        d->probe_s[0] = d->probe_s[1] = 0;
        return d->team;
    }
    return phase < PROBE_TOKENS ? 1 : d->threads;
}

void decoder_step(Decoder *d, int token, float *logits) {
    Model *m = d->m;
    const ReformerConfig *c = &m->spec.cfg;
    int t = d->len, C = c->d_model, NH = c->n_heads, HS = c->d_head;
    CHECK(t < d->T, "the cache holds %d positions", d->T);
    int team = probe_team(d, t), phase = t % PROBE_EVERY;
    double t0 = now_seconds();
    omp_set_num_threads(team);
    ThreadScratch w = plan_scratch_views(&d->spec, d->work.shared);
    model_embed(m, d->x1, &token, 1, t);
    memcpy(d->x2, d->x1, (size_t)C * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        const AttnParams *p = &m->w.p.layer[l].attn;
        float mean, rstd;
        layernorm_forward(d->h, &mean, &rstd, d->x2, p->ln_w, p->ln_b, 1, C, c->ln_eps);
        cache_projections(d, l, d->h, 1, t);
        if (c->attn[l] == ATTN_LOCAL) linear_forward(d->q, d->h, p->qk, NULL, 1, C, NH * HS, 0.0f);
        #pragma omp parallel for schedule(static) num_threads(team) if (NH > 1 && team > 1)
        for (int hd = 0; hd < NH; hd++) {
            float *o = d->o + (size_t)hd * HS, *scratch = d->scratch + omp_get_thread_num() * d->scratch_len;
            if (c->attn[l] == ATTN_LOCAL) {
                size_t rows = (size_t)hd * d->T * HS;
                local_decode(o, d->q + (size_t)hd * HS, d->key[l] + rows, d->val[l] + rows, t,
                             &m->spec.shape[l].attn.local, scratch);
            } else {
                LshHeadCache h = head_cache(d, l, hd);
                lsh_decode(o, &h, t, d->hashed[l], d->bucket[l] ? head_rotations(d, l, hd) : NULL, lsh_shape(d, l), scratch);
            }
        }
        linear_forward(d->att, d->o, p->o, NULL, 1, NH * HS, C, 0.0f);
        for (int i = 0; i < C; i++) d->x1[i] += d->att[i];  // y1 = x1 + F(x2)
        LayerShape s = layer_shape_at(&m->spec.shape[l], &(LayerPass){1, 1, 0, 0, 0, NULL});
        ffn_forward(d->x2, d->x1, &m->w.p.layer[l].ffn, 1, &s.ffn, w.layer.ffn, NULL);  // y2 = x2 + G(y1)
        if (c->attn[l] == ATTN_LSH && !d->hashed[l] && t + 1 >= c->lsh_chunk) hash_all(d, l, t + 1);
    }
    d->len = t + 1;
    model_logits_of(m, logits, d->x1, d->x2, w.head);
    omp_set_num_threads(d->threads);
    if (d->threads > 1 && phase < 2 * PROBE_TOKENS) d->probe_s[phase >= PROBE_TOKENS] += now_seconds() - t0;
}
