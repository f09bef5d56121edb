// plan.c: what a config describes, before anything is allocated: defaults, the bucket
// count, the parameter layout, layer shapes, chunk geometry, FLOPs and a model's sizes.
#include "plan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "gemm.h"

const char *const head_names[] = {"lm", "classifier", NULL};

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
    c->ffn_chunk = 0;  // chunk_rows picks
    c->head_chunk = 0;
    c->hash_seed = -1;
}

// Positions per feed-forward or LM-head chunk: the configured count, or by default 1024 in fp32
// (the rows whose sums fp32 results have always had) and 4096 in bf16, where 1024-row products
// leave 16 threads of AMX idle (the head took 21% of a 16-thread step at 1024, 9% at 4096).
static int chunk_rows(int configured) {
    if (configured) return configured;
    return gemm_precision() == PRECISION_BF16 ? 4096 : 1024;
}

// ---- LSH arithmetic ----

LshBuckets plan_buckets(const ReformerConfig *c, int T) {
    if (c->buckets.n_factors) return c->buckets;
    return lsh_default_buckets(imax(T, c->lsh_chunk), c->lsh_chunk, c->axial_shape[0] * c->axial_shape[1]);
}

long long plan_rotation_cols(const ReformerConfig *c, int T) {
    LshBuckets b = plan_buckets(c, T);
    return (long long)c->n_hashes * lsh_rotation_cols(&b);
}

void plan_resolve_buckets(ReformerConfig *c, int T) { c->buckets = plan_buckets(c, T); }

// ---- parameter layout ----

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
    float *ln_w = take(L, 1, 2 * C, 0, 0, "reformer.encoder.layer_norm.weight");
    float *ln_b = take(L, 1, 2 * C, 0, 0, "reformer.encoder.layer_norm.bias");
    if (c->head == HEAD_CLASSIFIER) {
        ClassHeadParams *h = &v->cls;
        h->ln_w = ln_w;
        h->ln_b = ln_b;
        h->dense_w = take(L, 2, C, 2 * C, 0, "classifier.dense.weight");
        h->dense_b = take(L, 1, C, 0, 0, "classifier.dense.bias");
        h->out_w = take(L, 2, c->classes, C, 0, "classifier.out_proj.weight");
        h->out_b = take(L, 1, c->classes, 0, 0, "classifier.out_proj.bias");
        return;
    }
    v->head.ln_w = ln_w;
    v->head.ln_b = ln_b;
    v->head.w = take(L, 2, c->vocab, 2 * C, 0, "lm_head.decoder.weight");
    v->head.b = take(L, 1, c->vocab, 0, 0, "lm_head.decoder.bias");
}

void plan_params(const ReformerConfig *c, float *base, ParamEntry *table, ModelViews *v, size_t *n_params,
                 int *n_entries) {
    Layout L = {table, 0, 0, base};
    ModelViews ignored;
    layout(c, &L, v ? v : &ignored);
    if (n_params) *n_params = L.offset;
    if (n_entries) *n_entries = L.n;
}

// ---- layer shapes ----

// The one place the config becomes a layer's description (plan_model stores it).
static LayerShape layer_shape_of(const ReformerConfig *c, int layer, int T) {
    LayerShape s;
    memset(&s, 0, sizeof(s));
    AttnShape *a = &s.attn;
    a->kind = c->attn[layer];
    a->T = T;
    a->C = c->d_model;
    a->NH = c->n_heads;
    a->HS = c->d_head;
    a->h_bf16 = gemm_precision() == PRECISION_BF16;  // as chunk_rows: the precision is set before a plan
    a->eps = c->ln_eps;
    a->hidden_dropout = c->hidden_dropout;
    LshShape *l = &a->lsh;
    l->T = T;
    l->HS = c->d_head;
    l->n_hashes = c->n_hashes;
    l->buckets = c->buckets;
    l->win = (Window){c->lsh_chunk, c->lsh_before, c->lsh_after, c->causal, 0};
    l->plain = a->kind == ATTN_FULL || T <= c->lsh_chunk;
    l->dropout = c->lsh_dropout;
    l->v_bf16 = gemm_block_rounds();  // as h_bf16, from the precision (and block kernel) set before
    LocalShape *o = &a->local;
    o->T = T;
    o->HS = c->d_head;
    o->win = (Window){c->local_chunk, c->local_before, c->local_after, c->causal, 0};
    o->dropout = c->local_dropout;
    FfnShape *f = &s.ffn;
    f->C = c->d_model;
    f->F = c->d_ff;
    f->act = c->act;
    f->chunk = chunk_rows(c->ffn_chunk);
    f->eps = c->ln_eps;
    f->dropout = c->hidden_dropout;
    return s;
}

HeadShape plan_head_shape(const ModelSpec *s, int T) {
    HeadShape h;
    memset(&h, 0, sizeof(h));
    h.T = T;
    h.C = s->cfg.d_model;
    h.V = s->cfg.vocab;
    h.chunk = chunk_rows(s->cfg.head_chunk);
    h.eps = s->cfg.ln_eps;
    h.dropout = s->cfg.hidden_dropout;
    h.shift = 1;
    return h;
}

ClassHeadShape plan_class_shape(const ModelSpec *s, int T) {
    ClassHeadShape h;
    memset(&h, 0, sizeof(h));
    h.T = T;
    h.C = s->cfg.d_model;
    h.K = s->cfg.classes;
    h.pooling = s->cfg.pooling;
    h.eps = s->cfg.ln_eps;
    h.dropout = s->cfg.hidden_dropout;
    return h;
}

// The head's scratch: the LM head's or the classifier's.
static size_t head_scratch_floats(const ModelSpec *s) {
    if (s->cfg.head == HEAD_CLASSIFIER) {
        ClassHeadShape h = plan_class_shape(s, s->T);
        return class_head_scratch_floats(&h);
    }
    HeadShape h = plan_head_shape(s, s->T);
    return lm_head_scratch_floats(&h);
}

// ---- a model's sizes ----

void plan_model(ModelSpec *s, const ReformerConfig *c, int B, int T, uint64_t seed, ExecMode mode) {
    memset(s, 0, sizeof(*s));
    s->cfg = *c;
    plan_resolve_buckets(&s->cfg, T);
    s->B = B;
    s->T = T;
    s->seed = seed;
    for (int l = 0; l < c->n_layers; l++) s->shape[l] = layer_shape_of(&s->cfg, l, T);
    plan_params(&s->cfg, NULL, NULL, NULL, &s->n_params, &s->n_entries);
    // short sequences may run one per thread (model_forward): a scratch and gradient each
    s->threads = threads_get();
    s->team = mode == EXEC_AUTO && T <= MODEL_BY_SEQUENCE_T && B >= 2 && B >= s->threads ? s->threads : 0;
}

// The attention scratch of the longest call: the plain path at T <= chunk and the chunked
// path at full T differ in shape; sized with dropout on.
static size_t attn_scratch_floats(const ModelSpec *s) {
    size_t most = 0;
    int lens[2] = {s->T, imin(s->T, imin(s->cfg.lsh_chunk, s->cfg.local_chunk))};
    for (int l = 0; l < s->cfg.n_layers; l++)
        for (int i = 0; i < 2; i++) {
            LayerPass pass = {lens[i], s->B, 1, 0, 0, NULL};
            LayerShape at = layer_shape_at(&s->shape[l], &pass);
            size_t n = attention_work_floats(&at.attn);
            if (n > most) most = n;
        }
    return most;
}

// A team's scratches start 64 bytes apart, as their own allocations would: the LM head keeps
// doubles there, and vector loops run the same way in every thread.
static size_t aligned(size_t floats) { return (floats + 15) / 16 * 16; }

// The attention, the feed-forward and the head run one after another and keep nothing in their
// scratch between calls (each backward recomputes its forward), so one area serves all three.
size_t plan_scratch_floats(const ModelSpec *s) {
    size_t attn = attn_scratch_floats(s), ffn = ffn_scratch_floats(&s->shape[0].ffn), head = head_scratch_floats(s);
    size_t most = attn > ffn ? attn : ffn;
    return aligned(most > head ? most : head);
}

ThreadScratch plan_scratch_views(const ModelSpec *s, float *base) {
    return (ThreadScratch){{base, base}, base};
}

size_t plan_order_ints(const ModelSpec *s, int T) {
    LayerShape at = layer_shape_at(&s->shape[0], &(LayerPass){T, 1, 0, 0, 0, NULL});
    return attention_order_ints(&at.attn);
}

size_t plan_keep_floats(const ModelSpec *s) {
    size_t most = 0;
    for (int l = 0; l < s->cfg.n_layers; l++) {
        size_t n = reversible_keep_floats(&s->shape[l]);
        if (n > most) most = n;
    }
    return most * s->B;
}

size_t plan_param_bytes(const ModelSpec *s) { return 2 * s->n_params * sizeof(float); }

size_t plan_activation_bytes(const ModelSpec *s, int kept_layers) {
    size_t act = (size_t)s->B * s->T * s->cfg.d_model;
    // the two halves and their gradients, the bucket orders, the shared scratch, a copy per
    // thread of the team with its gradient block, kept layers
    return 4 * act * sizeof(float) + s->B * plan_order_ints(s, s->T) * s->cfg.n_layers * sizeof(int) +
           ((1 + (size_t)s->team) * plan_scratch_floats(s) + (size_t)s->team * s->n_params +
            (size_t)kept_layers * plan_keep_floats(s)) * sizeof(float);
}

size_t plan_bytes_needed(const ReformerConfig *c, int B, int T, size_t *n_params) {
    ModelSpec s;
    plan_model(&s, c, B, T, 0, EXEC_AUTO);
    *n_params = s.n_params;
    return plan_param_bytes(&s) + plan_activation_bytes(&s, 0);
}

size_t plan_keep_layer_bytes(const ReformerConfig *c, int B, int T) {
    ModelSpec s;
    plan_model(&s, c, B, T, 0, EXEC_AUTO);
    return plan_keep_floats(&s) * sizeof(float);
}

int plan_keep_within(const ReformerConfig *c, int B, int T, double budget_bytes) {
    double n = floor(budget_bytes / (double)plan_keep_layer_bytes(c, B, T));
    return n < c->n_layers ? (int)n : c->n_layers;
}

// ---- axial position tables ----

void plan_axial_shape(int shape[2], long long L) {
    int p = 0;
    while ((2LL << p) <= L) p++;
    shape[0] = 1 << (p / 2);
    shape[1] = (int)((L + shape[0] - 1) / shape[0]);
}

void plan_axial_dims(int dims[2], int d_model) {
    dims[0] = d_model >= 8 ? d_model / 4 : 1;  // each at least 1, as the config table asks
    dims[1] = d_model - dims[0];
}

// ---- chunk geometry ----

int plan_layer_chunk(const ReformerConfig *c, int l) {
    return c->attn[l] == ATTN_LSH ? c->lsh_chunk : c->attn[l] == ATTN_LOCAL ? c->local_chunk : 1;
}

long long plan_chunk_lcm(const ReformerConfig *c) {
    long long lcm = 1;
    for (int l = 0; l < c->n_layers; l++) {
        long long ch = plan_layer_chunk(c, l), a = lcm, b = ch;
        while (b) {
            long long t = a % b;
            a = b;
            b = t;
        }
        lcm = lcm / a * ch;  // at most lsh_chunk x local_chunk: two kinds of chunk
    }
    return lcm;
}

long long plan_padded_length(const ReformerConfig *c, long long T) {
    long long lcm = plan_chunk_lcm(c), least = 0;
    for (int l = 0; l < c->n_layers; l++) {
        int ch = plan_layer_chunk(c, l);
        if (ch > 1 && (least == 0 || ch < least)) least = ch;
    }
    return least && T > least && T % lcm ? (T / lcm + 1) * lcm : T;
}

int plan_length_misfit(const ReformerConfig *c, long long T) {
    for (int l = 0; l < c->n_layers; l++) {
        int ch = plan_layer_chunk(c, l);
        if (T > ch && T % ch) return ch;
    }
    return 0;
}

// ---- FLOPs ----

double plan_flops_split(const ReformerConfig *c, int T, int train, int kept_layers, double part[FLOPS_PARTS]) {
    double C = c->d_model, D = (double)c->n_heads * c->d_head, HS = c->d_head;
    for (int i = 0; i < FLOPS_PARTS; i++) part[i] = 0.0;
    for (int l = 0; l < c->n_layers; l++) {
        double dense = 4.0 * C * c->d_ff;  // two dense layers
        double kernel, hash = 0.0;
        int kind = c->attn[l];
        dense += 2.0 * C * D * (kind == ATTN_LOCAL ? 3 : 2) + 2.0 * D * C;  // projections, output
        if (kind == ATTN_LSH && T > c->lsh_chunk) {
            double cols = (double)plan_rotation_cols(c, T) / c->n_hashes;
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

double plan_flops_per_token(const ReformerConfig *c, int T, int train, int kept_layers) {
    double part[FLOPS_PARTS];
    return plan_flops_split(c, T, train, kept_layers, part);
}

