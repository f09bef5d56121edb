// model.c: parameter layout, buffers, and the wiring of embedding, reversible
// layers and LM head. The layer files do the math; this file only connects them.
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "common.h"
#include "profile.h"
#include "rng.h"

enum { SITE_EMBED = 31, SITE_HEAD = 32, SITE_ROT = 33, SITE_LAYER = 34, SITE_INIT = 35 };

void reformer_config_default(ReformerConfig *c) {
    memset(c, 0, sizeof(*c));
    c->vocab = 256;
    c->d_model = 256;
    c->d_ff = 1024;
    c->n_heads = 4;
    c->d_head = 64;
    c->n_layers = 6;
    for (int l = 0; l < MAX_LAYERS; l++) c->attn[l] = ATTN_LSH;
    c->n_hashes = 2;
    c->lsh_chunk = 64;
    c->lsh_before = 1;
    c->local_chunk = 64;
    c->local_before = 1;
    c->axial_shape[0] = 64;
    c->axial_shape[1] = 64;
    c->axial_dims[0] = 64;
    c->axial_dims[1] = 192;
    c->act = ACT_GELU;
    c->causal = 1;
    c->ln_eps = 1e-12f;
    c->init_std = 0.02f;
    c->axial_std = 0.02f;
    c->ffn_chunk = 1024;
    c->head_chunk = 1024;
    c->hash_seed = -1;
}

// ---- parameter layout ------------------------------------------------------

typedef struct {
    ParamEntry *table;  // NULL: only count
    int n;
    size_t offset;
    float *base;        // NULL: offsets only
} Layout;

static float *take(Layout *L, int ndim, int d0, int d1, int d2, const char *fmt, ...) {
    size_t numel = (size_t)d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
    if (L->table) {
        ParamEntry *e = &L->table[L->n];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->name, sizeof(e->name), fmt, ap);
        va_end(ap);
        e->offset = L->offset;
        e->numel = numel;
        e->ndim = ndim;
        e->shape[0] = d0;
        e->shape[1] = d1;
        e->shape[2] = d2;
    }
    float *p = L->base ? L->base + L->offset : NULL;
    L->n++;
    L->offset += numel;
    return p;
}

// One walk defines the order of the block, the names and the views.
static void layout(const ReformerConfig *c, Layout *L, ModelViews *v) {
    int C = c->d_model, D = c->n_heads * c->d_head, F = c->d_ff;
    v->wte = take(L, 2, c->vocab, C, 0, "reformer.embeddings.word_embeddings.weight");
    v->pos0 = take(L, 3, c->axial_shape[0], 1, c->axial_dims[0],
                   "reformer.embeddings.position_embeddings.weights.0");
    v->pos1 = take(L, 3, 1, c->axial_shape[1], c->axial_dims[1],
                   "reformer.embeddings.position_embeddings.weights.1");
    for (int l = 0; l < c->n_layers; l++) {
        LayerParams *p = &v->layer[l];
        const char *pre = "reformer.encoder.layers";
        p->attn.ln_w = take(L, 1, C, 0, 0, "%s.%d.attention.layer_norm.weight", pre, l);
        p->attn.ln_b = take(L, 1, C, 0, 0, "%s.%d.attention.layer_norm.bias", pre, l);
        if (c->attn[l] == ATTN_LOCAL) {
            p->attn.qk = take(L, 2, D, C, 0, "%s.%d.attention.self_attention.query.weight", pre, l);
            p->attn.k = take(L, 2, D, C, 0, "%s.%d.attention.self_attention.key.weight", pre, l);
        } else {
            p->attn.qk = take(L, 2, D, C, 0, "%s.%d.attention.self_attention.query_key.weight", pre, l);
            p->attn.k = NULL;
        }
        p->attn.v = take(L, 2, D, C, 0, "%s.%d.attention.self_attention.value.weight", pre, l);
        p->attn.o = take(L, 2, C, D, 0, "%s.%d.attention.output.dense.weight", pre, l);
        p->ffn.ln_w = take(L, 1, C, 0, 0, "%s.%d.feed_forward.layer_norm.weight", pre, l);
        p->ffn.ln_b = take(L, 1, C, 0, 0, "%s.%d.feed_forward.layer_norm.bias", pre, l);
        p->ffn.w1 = take(L, 2, F, C, 0, "%s.%d.feed_forward.dense.dense.weight", pre, l);
        p->ffn.b1 = take(L, 1, F, 0, 0, "%s.%d.feed_forward.dense.dense.bias", pre, l);
        p->ffn.w2 = take(L, 2, C, F, 0, "%s.%d.feed_forward.output.dense.weight", pre, l);
        p->ffn.b2 = take(L, 1, C, 0, 0, "%s.%d.feed_forward.output.dense.bias", pre, l);
    }
    v->head.ln_w = take(L, 1, 2 * C, 0, 0, "reformer.encoder.layer_norm.weight");
    v->head.ln_b = take(L, 1, 2 * C, 0, 0, "reformer.encoder.layer_norm.bias");
    v->head.w = take(L, 2, c->vocab, 2 * C, 0, "lm_head.decoder.weight");
    v->head.b = take(L, 1, c->vocab, 0, 0, "lm_head.decoder.bias");
}

// HuggingFace _init_weights: normal(0, initializer_range) for weights, zero biases,
// LayerNorm (1, 0), axial tables normal(0, axial_std) (HF's axial_norm_std).
static void init_params(Model *m, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, hash_stream(seed, SITE_INIT, 0, 0));
    for (int i = 0; i < m->n_entries; i++) {
        ParamEntry *e = &m->table[i];
        float *x = m->params + e->offset;
        const char *n = e->name;
        size_t len = strlen(n);
        int is_bias = len > 5 && strcmp(n + len - 5, ".bias") == 0;
        int is_norm = strstr(n, "layer_norm") != NULL;
        float std = strstr(n, "position_embeddings") ? m->cfg.axial_std : m->cfg.init_std;
        for (size_t j = 0; j < e->numel; j++)
            x[j] = is_norm ? (is_bias ? 0.0f : 1.0f) : is_bias ? 0.0f : std * rng_normal(&rng);
    }
}

// ---- shapes and buffers ----------------------------------------------------

// The one place the config becomes a layer's description (model_plan stores it).
static LayerShape layer_shape_of(const ReformerConfig *c, int layer, int T) {
    LayerShape s;
    memset(&s, 0, sizeof(s));
    AttnShape *a = &s.attn;
    a->kind = c->attn[layer];
    a->T = T;
    a->C = c->d_model;
    a->NH = c->n_heads;
    a->HS = c->d_head;
    a->eps = c->ln_eps;
    a->hidden_dropout = c->hidden_dropout;
    LshShape *l = &a->lsh;
    l->T = T;
    l->HS = c->d_head;
    l->n_hashes = c->n_hashes;
    l->n_factors = c->n_bucket_factors;
    l->buckets[0] = c->buckets[0];
    l->buckets[1] = c->buckets[1];
    l->chunk = c->lsh_chunk;
    l->before = c->lsh_before;
    l->after = c->lsh_after;
    l->causal = c->causal;
    l->plain = a->kind == ATTN_FULL || T <= c->lsh_chunk;
    l->dropout = c->lsh_dropout;
    LocalShape *o = &a->local;
    o->T = T;
    o->HS = c->d_head;
    o->chunk = c->local_chunk;
    o->before = c->local_before;
    o->after = c->local_after;
    o->causal = c->causal;
    o->dropout = c->local_dropout;
    FfnShape *f = &s.ffn;
    f->C = c->d_model;
    f->F = c->d_ff;
    f->act = c->act;
    f->chunk = c->ffn_chunk;
    f->eps = c->ln_eps;
    f->dropout = c->hidden_dropout;
    return s;
}

static HeadShape head_shape(const Model *m, int T, const ForwardArgs *a) {
    HeadShape h;
    h.T = T;
    h.C = m->cfg.d_model;
    h.V = m->cfg.vocab;
    h.chunk = m->cfg.head_chunk;
    h.score_from = a->score_from;
    h.loss_from = a->loss_from;
    h.eps = m->cfg.ln_eps;
    h.dropout = a->training ? m->cfg.hidden_dropout : 0.0f;
    h.stream = 0;
    return h;
}

static size_t attn_work_max(const Model *m) {
    size_t most = 0;
    // the plain path at T <= chunk and the chunked path at full T differ in shape; sized
    // with dropout on
    int lens[2] = {m->T, imin(m->T, imin(m->cfg.lsh_chunk, m->cfg.local_chunk))};
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int i = 0; i < 2; i++) {
            LayerPass pass = {lens[i], m->B, 1, 0, 0};
            LayerShape s = layer_shape_at(&m->shape[l], &pass);
            size_t n = attention_work_floats(&s.attn);
            if (n > most) most = n;
        }
    return most;
}

// ---- one sequence per thread ----
// Short sequences give a team of threads too little work per kernel (the copy task's regions
// last microseconds), and such regions collapse when another process shares the cores. A
// batch with at least as many sequences as threads therefore runs whole sequences on
// separate threads, each with its own scratch (nested regions run on one thread) and, in the
// backward pass, its own gradient, added to the batch's sum in sequence order.

typedef struct {
    LayerWork layer;
    float *head;
} Scratch;

static size_t scratch_floats(const Model *m) {
    HeadShape h = head_shape(m, m->T, &(ForwardArgs){0});
    return attn_work_max(m) + ffn_scratch_floats(&m->shape[0].ffn) + lm_head_scratch_floats(&h);
}

// Thread t's scratch, or with t < 0 the one the kernels share when they split each sequence.
static Scratch scratch_of(const Model *m, int t) {
    if (t < 0) return (Scratch){{m->attn_work, m->ffn_work}, m->head_work};
    float *p = m->team_work + (size_t)t * scratch_floats(m);
    float *ffn = p + attn_work_max(m);
    return (Scratch){{p, ffn}, ffn + ffn_scratch_floats(&m->shape[0].ffn)};
}

// Ints of one sequence's bucket order in each layer's record, (NH, NR*T).
static size_t order_per_seq(const ReformerConfig *c, int T) { return (size_t)c->n_heads * c->n_hashes * T; }

// The sizes of a model for (B, T), nothing allocated: the bucket count resolved, the
// parameter count, the bucket-order records.
static void model_plan(Model *m, const ReformerConfig *c, int B, int T, uint64_t seed) {
    memset(m, 0, sizeof(*m));
    m->cfg = *c;
    m->B = B;
    m->T = T;
    m->seed = seed;
    int max_pos = c->axial_shape[0] * c->axial_shape[1];
    if (m->cfg.n_bucket_factors == 0)
        m->cfg.n_bucket_factors =
            lsh_default_buckets(m->cfg.buckets, imax(T, c->lsh_chunk), c->lsh_chunk, max_pos);
    for (int l = 0; l < c->n_layers; l++) m->shape[l] = layer_shape_of(&m->cfg, l, T);
    Layout L = {0};
    ModelViews tmp;
    layout(&m->cfg, &L, &tmp);
    m->n_entries = L.n;
    m->n_params = L.offset;
    m->sorted_per_layer = B * order_per_seq(c, T);
    // short sequences may run one per thread (model_forward): a scratch and gradient each
    m->threads = threads_get();
    m->team = T <= MODEL_BY_SEQUENCE_T && B >= 2 && B >= m->threads ? m->threads : 0;
}

// Floats one layer keeps for B sequences when it keeps its activations: the layers differ
// only in attention kind, so this is the largest of them.
static size_t keep_floats_per_layer(const Model *m) {
    size_t most = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        size_t n = reversible_keep_floats(&m->shape[l]);
        if (n > most) most = n;
    }
    return most * m->B;
}

size_t model_keep_layer_bytes(const ReformerConfig *c, int B, int T) {
    Model m;
    model_plan(&m, c, B, T, 0);
    return keep_floats_per_layer(&m) * sizeof(float);
}

int model_keep_within(const ReformerConfig *c, int B, int T, double budget_bytes) {
    double n = floor(budget_bytes / (double)model_keep_layer_bytes(c, B, T));
    return n < c->n_layers ? (int)n : c->n_layers;
}

void model_keep_layers(Model *m, int n) {
    CHECK(n >= 0 && n <= m->cfg.n_layers, "%d kept layers of %d", n, m->cfg.n_layers);
    xfree(m->kept);
    m->n_kept = n;
    m->kept_per_layer = keep_floats_per_layer(m);
    m->kept = n ? xmalloc((size_t)n * m->kept_per_layer * sizeof(float)) : NULL;
}

// The keep of layer l, or NULL when it recomputes: the top n_kept layers keep theirs (their
// inputs are then exact, and the inverse below starts from exact values).
static float *layer_keep(const Model *m, int l) {
    int first = m->cfg.n_layers - m->n_kept;
    return l >= first ? m->kept + (size_t)(l - first) * m->kept_per_layer : NULL;
}

size_t model_bytes_needed(const ReformerConfig *c, int B, int T, size_t *n_params) {
    Model m;
    model_plan(&m, c, B, T, 0);
    *n_params = m.n_params;
    return model_param_bytes(&m) + model_activation_bytes(&m);
}

void model_init(Model *m, const ReformerConfig *c, int B, int T, uint64_t seed) {
    model_plan(m, c, B, T, seed);
    m->table = xcalloc((size_t)m->n_entries, sizeof(ParamEntry));
    m->params = xmalloc(m->n_params * sizeof(float));
    m->grads = xcalloc(m->n_params, sizeof(float));
    Layout Lp = {m->table, 0, 0, m->params}, Lg = {NULL, 0, 0, m->grads};
    layout(&m->cfg, &Lp, &m->p);
    layout(&m->cfg, &Lg, &m->g);
    init_params(m, seed);

    size_t act = (size_t)B * T * c->d_model;
    m->x1 = xmalloc(act * sizeof(float));
    m->x2 = xmalloc(act * sizeof(float));
    m->dx1 = xmalloc(act * sizeof(float));
    m->dx2 = xmalloc(act * sizeof(float));
    m->sorted = xcalloc(m->sorted_per_layer * c->n_layers, sizeof(int));
    const LayerShape *s0 = &m->shape[0];
    m->rot = xmalloc((size_t)c->n_heads * c->d_head * c->n_hashes *
                     imax(1, lsh_rotation_cols(&s0->attn.lsh)) * sizeof(float));
    m->attn_work = xmalloc(attn_work_max(m) * sizeof(float));
    m->ffn_work = xmalloc(ffn_scratch_floats(&s0->ffn) * sizeof(float));
    HeadShape h = head_shape(m, T, &(ForwardArgs){0});
    m->head_work = xmalloc(lm_head_scratch_floats(&h) * sizeof(float));
    m->seq_nll = xmalloc((size_t)B * sizeof(double));
    m->seq_correct = xmalloc((size_t)B * sizeof(long));
    if (m->team) m->team_work = xmalloc((size_t)m->team * scratch_floats(m) * sizeof(float));
}

// The team's gradient blocks, made at the first backward pass that runs by sequence: a model
// that only evaluates never holds them (n_params floats a thread).
static void team_grads_alloc(Model *m) {
    if (m->team_grads) return;
    m->team_grads = xmalloc((size_t)m->team * m->n_params * sizeof(float));
    m->team_g = xcalloc((size_t)m->team, sizeof(ModelViews));
    for (int t = 0; t < m->team; t++) {
        Layout L = {NULL, 0, 0, m->team_grads + (size_t)t * m->n_params};
        layout(&m->cfg, &L, &m->team_g[t]);
    }
}

void model_free(Model *m) {
    xfree(m->table);
    xfree(m->params);
    xfree(m->grads);
    xfree(m->x1);
    xfree(m->x2);
    xfree(m->dx1);
    xfree(m->dx2);
    xfree(m->sorted);
    xfree(m->rot);
    xfree(m->attn_work);
    xfree(m->ffn_work);
    xfree(m->head_work);
    xfree(m->kept);
    xfree(m->seq_nll);
    xfree(m->seq_correct);
    xfree(m->team_work);
    xfree(m->team_grads);
    xfree(m->team_g);
    memset(m, 0, sizeof(*m));
}

void model_zero_grad(Model *m) { zero_floats(m->grads, m->n_params); }

size_t model_param_bytes(const Model *m) { return 2 * m->n_params * sizeof(float); }

size_t model_activation_bytes(const Model *m) {
    size_t act = (size_t)m->B * m->T * m->cfg.d_model;
    // the shared scratch, a copy per thread of the team with its gradient block, kept layers
    return 4 * act * sizeof(float) + m->sorted_per_layer * m->cfg.n_layers * sizeof(int) +
           ((1 + (size_t)m->team) * scratch_floats(m) + (size_t)m->team * m->n_params +
            (size_t)m->n_kept * m->kept_per_layer) * sizeof(float);
}

// ---- forward and backward --------------------------------------------------

uint64_t model_layer_stream(const Model *m, long long step, int l) {
    return hash_stream(m->seed, (uint64_t)step, SITE_LAYER, l);
}

uint64_t model_embed_stream(const Model *m, long long step, int b) {
    return hash_stream(m->seed, (uint64_t)step, SITE_EMBED, b);
}

uint64_t model_head_stream(const Model *m, long long step, int b) {
    return hash_stream(m->seed, (uint64_t)step, SITE_HEAD, b);
}

const float *model_layer_rotations(Model *m, const ForwardArgs *a, int l) {
    if (a->rotations && a->rotations[l]) return a->rotations[l];
    size_t n = (size_t)m->cfg.n_heads * m->cfg.d_head * m->cfg.n_hashes *
               lsh_rotation_cols(&m->shape[l].attn.lsh);
    // HF draws fresh rotations every forward unless hash_seed fixes them for all layers
    uint64_t st = m->cfg.hash_seed >= 0 ? hash_stream((uint64_t)m->cfg.hash_seed, SITE_ROT, 0, 0)
                                        : hash_stream(m->seed, (uint64_t)a->step, SITE_ROT, l);
    for (size_t i = 0; i < n; i++) m->rot[i] = hash_normal(st, i);
    return m->rot;
}

static EmbedShape embed_shape(const Model *m, int T, int training) {
    EmbedShape e;
    e.T = T;
    e.C = m->cfg.d_model;
    e.V = m->cfg.vocab;
    e.axial[0] = m->cfg.axial_shape[0];
    e.axial[1] = m->cfg.axial_shape[1];
    e.dims[0] = m->cfg.axial_dims[0];
    e.dims[1] = m->cfg.axial_dims[1];
    e.dropout = training ? m->cfg.hidden_dropout : 0.0f;
    e.stream = 0;
    e.start = 0;
    return e;
}

void model_embed(Model *m, float *out, const int *tokens, int T, int start) {
    EmbedShape e = embed_shape(m, T, 0);
    e.start = start;
    embedding_forward(out, tokens, m->p.wte, m->p.pos0, m->p.pos1, &e);
}

static int by_sequence(const Model *m, int B, int T) {
    return m->team >= threads_get() && B >= 2 && B >= threads_get() && T <= MODEL_BY_SEQUENCE_T;
}

double model_forward(Model *m, const int *tokens, int B, int T, const ForwardArgs *a) {
    CHECK(B <= m->B && T <= m->T && T >= 1, "batch %dx%d exceeds buffers %dx%d", B, T, m->B, m->T);
    CHECK(threads_get() <= m->threads, "%d threads; the scratch was sized for %d at model_init", threads_get(), m->threads);
    CHECK(!a->reuse_buckets || (m->args.step == a->step && m->cur_B == B && m->cur_T == T),
          "reusing the bucket order of a different forward");
    const ReformerConfig *c = &m->cfg;
    size_t n = (size_t)T * c->d_model, per_seq = order_per_seq(c, T);
    int seqs = by_sequence(m, B, T);
    m->args = *a;
    m->tokens = tokens;
    m->cur_B = B;
    m->cur_T = T;
    #pragma omp parallel for schedule(static) if (seqs)
    for (int b = 0; b < B; b++) {
        EmbedShape e = embed_shape(m, T, a->training);
        e.stream = model_embed_stream(m, a->step, a->first_seq + b);
        embedding_forward(m->x1 + b * n, tokens + (size_t)b * T, m->p.wte, m->p.pos0, m->p.pos1, &e);
        memcpy(m->x2 + b * n, m->x1 + b * n, n * sizeof(float));
    }
    for (int l = 0; l < c->n_layers; l++) {
        int hashes = c->attn[l] == ATTN_LSH && T > c->lsh_chunk;
        // the order is laid out for the call's (B, T): NH*NR*T per sequence
        BucketOrder order = {m->sorted + l * m->sorted_per_layer, hashes && !a->reuse_buckets, NULL};
        if (order.hash) order.rot = model_layer_rotations(m, a, l);
        uint64_t stream = model_layer_stream(m, a->step, l);
        float *keep = layer_keep(m, l);
        if (!seqs) {
            LayerPass pass = {T, B, a->training, stream, a->first_seq};
            Scratch w = scratch_of(m, -1);
            reversible_forward(m->x1, m->x2, &order, &m->p.layer[l], &m->shape[l], &pass, &w.layer, keep);
            continue;
        }
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            LayerPass pass = {T, 1, a->training, stream, a->first_seq + b};
            Scratch w = scratch_of(m, omp_get_thread_num());
            BucketOrder seq = order;
            if (seq.order) seq.order += b * per_seq;
            reversible_forward(m->x1 + b * n, m->x2 + b * n, &seq, &m->p.layer[l], &m->shape[l], &pass, &w.layer,
                               keep ? keep + b * reversible_keep_floats(&m->shape[l]) : NULL);
        }
    }
    double t0 = profile_now();
    #pragma omp parallel for schedule(static) if (seqs)
    for (int b = 0; b < B; b++) {
        HeadShape h = head_shape(m, T, a);
        h.stream = model_head_stream(m, a->step, a->first_seq + b);
        m->seq_correct[b] = 0;  // lm_head_forward adds to it
        m->seq_nll[b] = lm_head_forward(NULL, &m->seq_correct[b], m->x1 + b * n, m->x2 + b * n, tokens + (size_t)b * T,
                                        &m->p.head, &h, scratch_of(m, seqs ? omp_get_thread_num() : -1).head);
    }
    profile_add(PROFILE_HEAD, t0);
    double nll = 0.0;
    m->correct = 0;
    for (int b = 0; b < B; b++) {
        nll += m->seq_nll[b];
        m->correct += m->seq_correct[b];
    }
    long long labels = 0;
    for (int b = 0; b < B; b++)
        for (int t = imax(1, a->loss_from); t < T; t++) labels += tokens[(size_t)b * T + t] >= 0;
    m->n_labels = labels;
    m->scored = 0;
    for (int b = 0; b < B; b++)
        for (int t = imax(1, a->score_from); t < T; t++) m->scored += tokens[(size_t)b * T + t] >= 0;
    return labels ? nll / labels : 0.0;
}

void model_logits(Model *m, float *logits) {
    size_t n = (size_t)m->cur_T * m->cfg.d_model;
    for (int b = 0; b < m->cur_B; b++) {
        HeadShape h = head_shape(m, m->cur_T, &m->args);
        h.stream = model_head_stream(m, m->args.step, m->args.first_seq + b);
        lm_head_forward(logits + (size_t)b * m->cur_T * m->cfg.vocab, NULL, m->x1 + b * n,
                        m->x2 + b * n, m->tokens + (size_t)b * m->cur_T, &m->p.head, &h,
                        m->head_work);
    }
}

void model_logits_of(Model *m, float *logits, const float *y1, const float *y2) {
    HeadShape h = head_shape(m, 1, &(ForwardArgs){0});
    int no_label = -1;
    lm_head_forward(logits, NULL, y1, y2, &no_label, &m->p.head, &h, m->head_work);
}

// Sequence b's backward pass: its gradient += into g, with scratch w.
static void sequence_backward(Model *m, int b, float scale, ModelViews *g, const Scratch *w) {
    const ReformerConfig *c = &m->cfg;
    const ForwardArgs *a = &m->args;
    int T = m->cur_T;
    size_t n = (size_t)T * c->d_model, per_seq = order_per_seq(c, T);
    float *x1 = m->x1 + b * n, *x2 = m->x2 + b * n, *dx1 = m->dx1 + b * n, *dx2 = m->dx2 + b * n;
    const int *tok = m->tokens + (size_t)b * T;
    zero_floats(dx1, n);
    zero_floats(dx2, n);
    double t0 = profile_now();
    HeadShape h = head_shape(m, T, a);
    h.stream = model_head_stream(m, a->step, a->first_seq + b);
    lm_head_backward(dx1, dx2, &g->head, scale, x1, x2, tok, &m->p.head, &h, w->head);
    profile_add(PROFILE_HEAD, t0);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        LayerPass pass = {T, 1, a->training, model_layer_stream(m, a->step, l), a->first_seq + b};
        LayerWork lw = w->layer;
        float *kept = layer_keep(m, l);
        if (kept) kept += b * reversible_keep_floats(&m->shape[l]);
        reversible_backward(x1, x2, dx1, dx2, &g->layer[l], m->sorted + l * m->sorted_per_layer + b * per_seq,
                            &m->p.layer[l], &m->shape[l], &pass, &lw, kept);
    }
    // x1 = x2 = e, so de = dx1 + dx2
    for (size_t i = 0; i < n; i++) dx1[i] += dx2[i];
    EmbedShape e = embed_shape(m, T, a->training);
    e.stream = model_embed_stream(m, a->step, a->first_seq + b);
    embedding_backward(g->wte, g->pos0, g->pos1, dx1, tok, &e);
}

// Threads take a sequence each, forming its gradient alone in their own block; then every
// block joins the sum (grads, or acc in double) in sequence order, as the path with acc adds.
static void backward_by_sequence(Model *m, float scale, double *acc) {
    int B = m->cur_B, team = threads_get();
    team_grads_alloc(m);
    for (int first = 0; first < B; first += team) {
        int count = imin(team, B - first);
        #pragma omp parallel for schedule(static, 1)
        for (int t = 0; t < count; t++) {
            zero_floats(m->team_grads + (size_t)t * m->n_params, m->n_params);
            Scratch w = scratch_of(m, t);
            sequence_backward(m, first + t, scale, &m->team_g[t], &w);
        }
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < m->n_params; i++) {
            if (acc) {
                for (int t = 0; t < count; t++) acc[i] += m->team_grads[(size_t)t * m->n_params + i];
            } else {
                for (int t = 0; t < count; t++) m->grads[i] += m->team_grads[(size_t)t * m->n_params + i];
            }
        }
    }
}

void model_backward(Model *m, long long labels, double *acc) {
    CHECK(m->tokens != NULL, "backward without forward");
    float scale = labels ? 1.0f / (float)labels : 0.0f;
    if (by_sequence(m, m->cur_B, m->cur_T)) {
        backward_by_sequence(m, scale, acc);
        m->tokens = NULL;
        return;
    }
    // sequence by sequence: each parameter still receives its layer's contributions in
    // sequence order, so without acc the sums are those of a layer-by-layer walk
    Scratch w = scratch_of(m, -1);
    for (int b = 0; b < m->cur_B; b++) {
        if (acc) model_zero_grad(m);
        sequence_backward(m, b, scale, &m->g, &w);
        if (acc) {
            #pragma omp parallel for schedule(static)
            for (size_t i = 0; i < m->n_params; i++) acc[i] += m->grads[i];
        }
    }
    m->tokens = NULL;
}

int model_layer_chunk(const ReformerConfig *c, int l) {
    return c->attn[l] == ATTN_LSH ? c->lsh_chunk : c->attn[l] == ATTN_LOCAL ? c->local_chunk : 1;
}

long long model_chunk_lcm(const ReformerConfig *c) {
    long long lcm = 1;
    for (int l = 0; l < c->n_layers; l++) {
        long long ch = model_layer_chunk(c, l), a = lcm, b = ch;
        while (b) {
            long long t = a % b;
            a = b;
            b = t;
        }
        lcm = lcm / a * ch;  // at most lsh_chunk x local_chunk: two kinds of chunk
    }
    return lcm;
}

int model_length_misfit(const ReformerConfig *c, long long T) {
    for (int l = 0; l < c->n_layers; l++) {
        int ch = model_layer_chunk(c, l);
        if (T > ch && T % ch) return ch;
    }
    return 0;
}

double model_flops_split(const ReformerConfig *c, int T, int train, int kept_layers, double part[FLOPS_PARTS]) {
    double C = c->d_model, D = (double)c->n_heads * c->d_head, HS = c->d_head;
    for (int i = 0; i < FLOPS_PARTS; i++) part[i] = 0.0;
    for (int l = 0; l < c->n_layers; l++) {
        double dense = 4.0 * C * c->d_ff;  // two dense layers
        double kernel, hash = 0.0;
        int kind = c->attn[l];
        dense += 2.0 * C * D * (kind == ATTN_LOCAL ? 3 : 2) + 2.0 * D * C;  // projections, output
        if (kind == ATTN_LSH && T > c->lsh_chunk) {
            int b[2], nf = c->n_bucket_factors ? c->n_bucket_factors : 0;
            if (nf) { b[0] = c->buckets[0]; b[1] = c->buckets[1]; }
            else nf = lsh_default_buckets(b, T, c->lsh_chunk, c->axial_shape[0] * c->axial_shape[1]);
            double cols = 0;
            for (int i = 0; i < nf; i++) cols += b[i] / 2;
            double keys = (double)(c->lsh_before + c->lsh_after + 1) * c->lsh_chunk;
            kernel = c->n_heads * c->n_hashes * 4.0 * HS * keys;
            hash = c->n_heads * c->n_hashes * 2.0 * HS * cols;
        } else if (kind == ATTN_LOCAL && T > c->local_chunk) {
            kernel = c->n_heads * 4.0 * HS * (c->local_before + c->local_after + 1) * c->local_chunk;
        } else {  // plain attention over the sequence; causal sees half on average
            kernel = c->n_heads * 4.0 * HS * (c->causal ? (T + 1) / 2.0 : T);
        }
        // training: forward, backward (twice the forward) and, unless the layer keeps its
        // activations, the recompute (once more)
        double passes = train ? (l < c->n_layers - kept_layers ? 4.0 : 3.0) : 1.0;
        part[FLOPS_DENSE] += passes * dense;
        part[FLOPS_ATTN_KERNEL] += passes * kernel;
        part[FLOPS_HASH] += hash;
    }
    // LM head on [x1, x2]; its backward recomputes the logits chunk by chunk (none are kept)
    part[FLOPS_DENSE] += (train ? 4.0 : 1.0) * 2.0 * 2 * C * c->vocab;
    return part[FLOPS_DENSE] + part[FLOPS_ATTN_KERNEL] + part[FLOPS_HASH];
}

double model_flops_per_token(const ReformerConfig *c, int T, int train, int kept_layers) {
    double part[FLOPS_PARTS];
    return model_flops_split(c, T, train, kept_layers, part);
}

void model_slices(const Model *m, int parts, size_t *at) {
    CHECK(parts >= 1 && parts <= m->n_entries, "%d slices of %d tensors", parts, m->n_entries);
    at[0] = 0;
    at[parts] = m->n_params;
    int prev = 0;  // the tensor the previous slice starts at
    for (int r = 1; r < parts; r++) {
        double target = (double)m->n_params * r / parts;
        int best = prev + 1, last = m->n_entries - (parts - r);  // leave a tensor for each slice after
        for (int i = prev + 1; i <= last; i++)
            if (fabs((double)m->table[i].offset - target) < fabs((double)m->table[best].offset - target)) best = i;
        at[r] = m->table[best].offset;
        prev = best;
    }
}
