// model.c: the model's buffers and the wiring of embedding, reversible layers and LM head.
// The layer files do the math and plan.c the sizes; this file only connects them.
#include "model.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "profile.h"
#include "rng.h"

enum { SITE_EMBED = 31, SITE_HEAD = 32, SITE_ROT = 33, SITE_LAYER = 34, SITE_INIT = 35 };

// HuggingFace _init_weights: normal(0, initializer_range) for weights, zero biases,
// LayerNorm (1, 0), axial tables normal(0, axial_std) (HF's axial_norm_std).
static void init_params(Model *m, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, hash_stream(seed, SITE_INIT, 0, 0));
    for (int i = 0; i < m->spec.n_entries; i++) {
        ParamEntry *e = &m->w.table[i];
        float *x = m->w.params + e->offset;
        const char *n = e->name;
        size_t len = strlen(n);
        int is_bias = len > 5 && strcmp(n + len - 5, ".bias") == 0;
        int is_norm = strstr(n, "layer_norm") != NULL;
        float std = strstr(n, "position_embeddings") ? m->spec.cfg.axial_std : m->spec.cfg.init_std;
        for (size_t j = 0; j < e->numel; j++)
            x[j] = is_norm ? (is_bias ? 0.0f : 1.0f) : is_bias ? 0.0f : std * rng_normal(&rng);
    }
}

static int valid_of(const ForwardArgs *a, int b) { return a->valid ? a->valid[b] : 0; }

// Sequence b's LM head: its padding, which labels it scores, and its dropout stream.
static HeadShape head_shape(const Model *m, int T, const ForwardArgs *a, int b) {
    HeadShape h = plan_head_shape(&m->spec, T);
    h.score_from = a->score_from;
    h.loss_from = a->loss_from;
    h.valid = valid_of(a, b);
    h.dropout = a->training ? m->spec.cfg.hidden_dropout : 0.0f;
    h.stream = model_head_stream(m, a->step, a->first_seq + b);
    h.shift = a->labels ? 0 : 1;
    return h;
}

static ClassHeadShape class_shape(const Model *m, int T, const ForwardArgs *a, int b) {
    ClassHeadShape h = plan_class_shape(&m->spec, T);
    h.valid = valid_of(a, b);
    h.dropout = a->training ? m->spec.cfg.hidden_dropout : 0.0f;
    h.stream = model_head_stream(m, a->step, a->first_seq + b);
    return h;
}

// Sequence b's labels for the LM head: its own (masked LM) or its tokens (next token).
static const int *lm_labels(const Model *m, int b) {
    const int *l = m->act.args.labels ? m->act.args.labels : m->act.tokens;
    return l + (size_t)b * m->act.cur_T;
}

static int class_label(const Model *m, int b) { return m->act.args.labels ? m->act.args.labels[b] : -1; }

// Sequence b's loss (summed), right guesses and label count under the model's head.
static double head_forward(Model *m, int b, int T, float *scratch, long long *labels, long long *scored) {
    const ForwardArgs *a = &m->act.args;
    size_t n = (size_t)T * m->spec.cfg.d_model;
    const float *y1 = m->act.x1 + b * n, *y2 = m->act.x2 + b * n;
    m->act.seq_correct[b] = 0;
    if (m->spec.cfg.head == HEAD_CLASSIFIER) {
        ClassHeadShape h = class_shape(m, T, a, b);
        int y = class_label(m, b);
        mem_poison_floats(scratch, class_head_scratch_floats(&h));
        double nll = class_head_forward(NULL, &m->act.seq_pred[b], y1, y2, y, &m->w.p.cls, &h, scratch);
        *labels = *scored = y >= 0;
        m->act.seq_correct[b] = y >= 0 && m->act.seq_pred[b] == y;
        return nll;
    }
    HeadShape h = head_shape(m, T, a, b);
    const int *lab = lm_labels(m, b);
    *labels = lm_head_count_labels(lab, &h, imax(h.shift, a->loss_from));
    *scored = lm_head_count_labels(lab, &h, imax(h.shift, a->score_from));
    mem_poison_floats(scratch, lm_head_scratch_floats(&h));
    return lm_head_forward(NULL, &m->act.seq_correct[b], y1, y2, lab, &m->w.p.head, &h, scratch);
}

// ---- buffers ----

void activations_init(Activations *a, const ModelSpec *s) {
    memset(a, 0, sizeof(*a));
    size_t act = (size_t)s->B * s->T * s->cfg.d_model;
    a->x1 = xmalloc(act * sizeof(float));
    a->x2 = xmalloc(act * sizeof(float));
    a->dx1 = xmalloc(act * sizeof(float));
    a->dx2 = xmalloc(act * sizeof(float));
    a->sorted_per_layer = s->B * plan_order_ints(s, s->T);
    a->sorted = xcalloc(a->sorted_per_layer * s->cfg.n_layers, sizeof(int));
    a->seq_nll = xmalloc((size_t)s->B * sizeof(double));
    a->seq_correct = xmalloc((size_t)s->B * sizeof(long));
    a->seq_pred = xcalloc((size_t)s->B, sizeof(int));
}

void activations_free(Activations *a) {
    xfree(a->x1);
    xfree(a->x2);
    xfree(a->dx1);
    xfree(a->dx2);
    xfree(a->sorted);
    xfree(a->kept);
    xfree(a->seq_nll);
    xfree(a->seq_correct);
    xfree(a->seq_pred);
    memset(a, 0, sizeof(*a));
}

void workspace_init(Workspace *w, const ModelSpec *s) {
    memset(w, 0, sizeof(*w));
    const ReformerConfig *c = &s->cfg;
    w->rot = xmalloc((size_t)c->n_heads * c->d_head * imax(1, (int)plan_rotation_cols(c, s->T)) * sizeof(float));
    w->shared = xmalloc(plan_scratch_floats(s) * sizeof(float));
    if (s->team) w->team = xmalloc((size_t)s->team * plan_scratch_floats(s) * sizeof(float));
}

void workspace_free(Workspace *w) {
    xfree(w->rot);
    xfree(w->shared);
    xfree(w->team);
    xfree(w->team_grads);
    xfree(w->team_g);
    memset(w, 0, sizeof(*w));
}

void model_init(Model *m, const ReformerConfig *c, int B, int T, uint64_t seed) {
    model_init_mode(m, c, B, T, seed, EXEC_AUTO);
}

void model_init_mode(Model *m, const ReformerConfig *c, int B, int T, uint64_t seed, ExecMode mode) {
    memset(m, 0, sizeof(*m));
    plan_model(&m->spec, c, B, T, seed, mode);
    ModelWeights *w = &m->w;
    w->table = xcalloc((size_t)m->spec.n_entries, sizeof(ParamEntry));
    w->params = xmalloc(m->spec.n_params * sizeof(float));
    w->grads = xcalloc(m->spec.n_params, sizeof(float));
    plan_params(&m->spec.cfg, w->params, w->table, &w->p, NULL, NULL);
    plan_params(&m->spec.cfg, w->grads, NULL, &w->g, NULL, NULL);
    init_params(m, seed);
    activations_init(&m->act, &m->spec);
    workspace_init(&m->work, &m->spec);
}

void model_keep_layers(Model *m, int n) {
    CHECK(n >= 0 && n <= m->spec.cfg.n_layers, "%d kept layers of %d", n, m->spec.cfg.n_layers);
    Activations *a = &m->act;
    xfree(a->kept);
    a->n_kept = n;
    a->kept_per_layer = plan_keep_floats(&m->spec);
    a->kept = n ? xmalloc((size_t)n * a->kept_per_layer * sizeof(float)) : NULL;
}

// The keep of layer l, or NULL when it recomputes: the top n_kept layers keep theirs (their
// inputs are then exact, and the inverse below starts from exact values).
static float *layer_keep(const Model *m, int l) {
    int first = m->spec.cfg.n_layers - m->act.n_kept;
    return l >= first ? m->act.kept + (size_t)(l - first) * m->act.kept_per_layer : NULL;
}

// The team's gradient blocks, made at the first backward pass that runs by sequence: a model
// that only evaluates never holds them (n_params floats a thread).
static void team_grads_alloc(Model *m) {
    Workspace *w = &m->work;
    if (w->team_grads) return;
    w->team_grads = xmalloc((size_t)m->spec.team * m->spec.n_params * sizeof(float));
    w->team_g = xcalloc((size_t)m->spec.team, sizeof(ModelViews));
    for (int t = 0; t < m->spec.team; t++)
        plan_params(&m->spec.cfg, w->team_grads + (size_t)t * m->spec.n_params, NULL, &w->team_g[t], NULL, NULL);
}

void model_free(Model *m) {
    xfree(m->w.table);
    xfree(m->w.params);
    xfree(m->w.grads);
    activations_free(&m->act);
    workspace_free(&m->work);
    memset(m, 0, sizeof(*m));
}

void model_zero_grad(Model *m) { zero_floats(m->w.grads, m->spec.n_params); }

size_t model_param_bytes(const Model *m) { return plan_param_bytes(&m->spec); }

size_t model_activation_bytes(const Model *m) { return plan_activation_bytes(&m->spec, m->act.n_kept); }

// Thread t's scratch, or with t < 0 the one the kernels share when they split each sequence.
static ThreadScratch scratch_of(const Model *m, int t) {
    if (t < 0) return plan_scratch_views(&m->spec, m->work.shared);
    return plan_scratch_views(&m->spec, m->work.team + (size_t)t * plan_scratch_floats(&m->spec));
}

// ---- forward and backward --------------------------------------------------

uint64_t model_layer_stream(const Model *m, long long step, int l) {
    return hash_stream(m->spec.seed, (uint64_t)step, SITE_LAYER, l);
}

uint64_t model_embed_stream(const Model *m, long long step, int b) {
    return hash_stream(m->spec.seed, (uint64_t)step, SITE_EMBED, b);
}

uint64_t model_head_stream(const Model *m, long long step, int b) {
    return hash_stream(m->spec.seed, (uint64_t)step, SITE_HEAD, b);
}

const float *model_layer_rotations(const Model *m, const ForwardArgs *a, int l, float *rot) {
    if (a->rotations && a->rotations[l]) return a->rotations[l];
    size_t n = (size_t)m->spec.cfg.n_heads * m->spec.cfg.d_head * plan_rotation_cols(&m->spec.cfg, m->spec.T);
    // HF draws fresh rotations every forward unless hash_seed fixes them for all layers
    uint64_t st = m->spec.cfg.hash_seed >= 0 ? hash_stream((uint64_t)m->spec.cfg.hash_seed, SITE_ROT, 0, 0)
                                        : hash_stream(m->spec.seed, (uint64_t)a->step, SITE_ROT, l);
    for (size_t i = 0; i < n; i++) rot[i] = hash_normal(st, i);
    return rot;
}

static EmbedShape embed_shape(const Model *m, int T, int training) {
    EmbedShape e;
    e.T = T;
    e.C = m->spec.cfg.d_model;
    e.V = m->spec.cfg.vocab;
    e.axial[0] = m->spec.cfg.axial_shape[0];
    e.axial[1] = m->spec.cfg.axial_shape[1];
    e.dims[0] = m->spec.cfg.axial_dims[0];
    e.dims[1] = m->spec.cfg.axial_dims[1];
    e.dropout = training ? m->spec.cfg.hidden_dropout : 0.0f;
    e.stream = 0;
    e.start = 0;
    return e;
}

void model_embed(const Model *m, float *out, const int *tokens, int T, int start) {
    EmbedShape e = embed_shape(m, T, 0);
    e.start = start;
    embedding_forward(out, tokens, m->w.p.wte, m->w.p.pos0, m->w.p.pos1, &e);
}

static int by_sequence(const Model *m, int B, int T) {
    return m->spec.team >= threads_get() && B >= 2 && B >= threads_get() && T <= MODEL_BY_SEQUENCE_T;
}

double model_forward(Model *m, const int *tokens, int B, int T, const ForwardArgs *a) {
    CHECK(B <= m->spec.B && T <= m->spec.T && T >= 1, "batch %dx%d exceeds buffers %dx%d", B, T, m->spec.B, m->spec.T);
    CHECK(threads_get() <= m->spec.threads, "%d threads; the scratch was sized for %d at model_init", threads_get(), m->spec.threads);
    CHECK(!a->reuse_buckets || (m->act.args.step == a->step && m->act.cur_B == B && m->act.cur_T == T),
          "reusing the bucket order of a different forward");
    const ReformerConfig *c = &m->spec.cfg;
    size_t n = (size_t)T * c->d_model, per_seq = plan_order_ints(&m->spec, T);
    int seqs = by_sequence(m, B, T);
    m->act.args = *a;
    m->act.tokens = tokens;
    m->act.cur_B = B;
    m->act.cur_T = T;
    #pragma omp parallel for schedule(static) if (seqs)
    for (int b = 0; b < B; b++) {
        EmbedShape e = embed_shape(m, T, a->training);
        e.stream = model_embed_stream(m, a->step, a->first_seq + b);
        embedding_forward(m->act.x1 + b * n, tokens + (size_t)b * T, m->w.p.wte, m->w.p.pos0, m->w.p.pos1, &e);
        memcpy(m->act.x2 + b * n, m->act.x1 + b * n, n * sizeof(float));
    }
    for (int l = 0; l < c->n_layers; l++) {
        int hashes = c->attn[l] == ATTN_LSH && T > c->lsh_chunk;
        // the order is laid out for the call's (B, T): NH*NR*T per sequence
        BucketOrder order = {m->act.sorted + l * m->act.sorted_per_layer, hashes && !a->reuse_buckets, NULL};
        if (order.hash) order.rot = model_layer_rotations(m, a, l, m->work.rot);
        uint64_t stream = model_layer_stream(m, a->step, l);
        float *keep = layer_keep(m, l);
        if (!seqs) {
            LayerPass pass = {T, B, a->training, stream, a->first_seq, a->valid};
            ThreadScratch w = scratch_of(m, -1);
            reversible_forward(m->act.x1, m->act.x2, &order, &m->w.p.layer[l], &m->spec.shape[l], &pass, &w.layer, keep);
            continue;
        }
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            LayerPass pass = {T, 1, a->training, stream, a->first_seq + b, a->valid ? a->valid + b : NULL};
            ThreadScratch w = scratch_of(m, omp_get_thread_num());
            BucketOrder seq = order;
            if (seq.order) seq.order += b * per_seq;
            reversible_forward(m->act.x1 + b * n, m->act.x2 + b * n, &seq, &m->w.p.layer[l], &m->spec.shape[l], &pass, &w.layer,
                               keep ? keep + b * reversible_keep_floats(&m->spec.shape[l]) : NULL);
        }
    }
    double t0 = now_seconds();
    long long *counts = xmalloc(2 * (size_t)B * sizeof(long long));  // labels, scored
    #pragma omp parallel for schedule(static) if (seqs)
    for (int b = 0; b < B; b++)
        m->act.seq_nll[b] = head_forward(m, b, T, scratch_of(m, seqs ? omp_get_thread_num() : -1).head, &counts[2 * b],
                                         &counts[2 * b + 1]);
    profile_add(PROFILE_HEAD, t0);
    double nll = 0.0;
    long long labels = 0;
    m->act.correct = m->act.scored = 0;
    for (int b = 0; b < B; b++) {
        nll += m->act.seq_nll[b];
        m->act.correct += m->act.seq_correct[b];
        labels += counts[2 * b];
        m->act.scored += counts[2 * b + 1];
    }
    xfree(counts);
    m->act.n_labels = labels;
    return labels ? nll / labels : 0.0;
}

void model_logits(Model *m, float *logits) {
    size_t n = (size_t)m->act.cur_T * m->spec.cfg.d_model;
    for (int b = 0; b < m->act.cur_B; b++) {
        const float *y1 = m->act.x1 + b * n, *y2 = m->act.x2 + b * n;
        if (m->spec.cfg.head == HEAD_CLASSIFIER) {
            ClassHeadShape h = class_shape(m, m->act.cur_T, &m->act.args, b);
            class_head_forward(logits + (size_t)b * m->spec.cfg.classes, NULL, y1, y2, -1, &m->w.p.cls, &h,
                               scratch_of(m, -1).head);
            continue;
        }
        HeadShape h = head_shape(m, m->act.cur_T, &m->act.args, b);
        lm_head_forward(logits + (size_t)b * m->act.cur_T * m->spec.cfg.vocab, NULL, y1, y2, lm_labels(m, b),
                        &m->w.p.head, &h, scratch_of(m, -1).head);
    }
}

void model_logits_of(const Model *m, float *logits, const float *y1, const float *y2, float *head_scratch) {
    HeadShape h = plan_head_shape(&m->spec, 1);
    h.dropout = 0.0f;  // decoding runs without dropout
    int no_label = -1;
    lm_head_forward(logits, NULL, y1, y2, &no_label, &m->w.p.head, &h, head_scratch);
}

// Sequence b's backward pass: its gradient += into g, with scratch w.
static void sequence_backward(Model *m, int b, float scale, ModelViews *g, const ThreadScratch *w) {
    const ReformerConfig *c = &m->spec.cfg;
    const ForwardArgs *a = &m->act.args;
    int T = m->act.cur_T;
    size_t n = (size_t)T * c->d_model, per_seq = plan_order_ints(&m->spec, T);
    float *x1 = m->act.x1 + b * n, *x2 = m->act.x2 + b * n, *dx1 = m->act.dx1 + b * n, *dx2 = m->act.dx2 + b * n;
    const int *tok = m->act.tokens + (size_t)b * T;
    zero_floats(dx1, n);
    zero_floats(dx2, n);
    double t0 = now_seconds();
    if (c->head == HEAD_CLASSIFIER) {
        ClassHeadShape h = class_shape(m, T, a, b);
        mem_poison_floats(w->head, class_head_scratch_floats(&h));
        class_head_backward(dx1, dx2, &g->cls, scale, x1, x2, class_label(m, b), &m->w.p.cls, &h, w->head);
    } else {
        HeadShape h = head_shape(m, T, a, b);
        mem_poison_floats(w->head, lm_head_scratch_floats(&h));
        lm_head_backward(dx1, dx2, &g->head, scale, x1, x2, lm_labels(m, b), &m->w.p.head, &h, w->head);
    }
    profile_add(PROFILE_HEAD, t0);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        LayerPass pass = {T, 1, a->training, model_layer_stream(m, a->step, l), a->first_seq + b,
                          a->valid ? a->valid + b : NULL};
        LayerWork lw = w->layer;
        float *kept = layer_keep(m, l);
        if (kept) kept += b * reversible_keep_floats(&m->spec.shape[l]);
        reversible_backward(x1, x2, dx1, dx2, &g->layer[l], m->act.sorted + l * m->act.sorted_per_layer + b * per_seq,
                            &m->w.p.layer[l], &m->spec.shape[l], &pass, &lw, kept);
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
    int B = m->act.cur_B, team = threads_get();
    team_grads_alloc(m);
    for (int first = 0; first < B; first += team) {
        int count = imin(team, B - first);
        #pragma omp parallel for schedule(static, 1)
        for (int t = 0; t < count; t++) {
            zero_floats(m->work.team_grads + (size_t)t * m->spec.n_params, m->spec.n_params);
            ThreadScratch w = scratch_of(m, t);
            sequence_backward(m, first + t, scale, &m->work.team_g[t], &w);
        }
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < m->spec.n_params; i++) {
            if (acc) {
                for (int t = 0; t < count; t++) acc[i] += m->work.team_grads[(size_t)t * m->spec.n_params + i];
            } else {
                for (int t = 0; t < count; t++) m->w.grads[i] += m->work.team_grads[(size_t)t * m->spec.n_params + i];
            }
        }
    }
}

void model_backward(Model *m, long long labels, double *acc) {
    CHECK(m->act.tokens != NULL, "backward without forward");
    float scale = labels ? 1.0f / (float)labels : 0.0f;
    if (by_sequence(m, m->act.cur_B, m->act.cur_T)) {
        backward_by_sequence(m, scale, acc);
        m->act.tokens = NULL;
        return;
    }
    // sequence by sequence: each parameter still receives its layer's contributions in
    // sequence order, so without acc the sums are those of a layer-by-layer walk
    ThreadScratch w = scratch_of(m, -1);
    for (int b = 0; b < m->act.cur_B; b++) {
        if (acc) model_zero_grad(m);
        sequence_backward(m, b, scale, &m->w.g, &w);
        if (acc) {
            #pragma omp parallel for schedule(static)
            for (size_t i = 0; i < m->spec.n_params; i++) acc[i] += m->w.grads[i];
        }
    }
    m->act.tokens = NULL;
}

void model_slices(const Model *m, int parts, size_t *at) {
    CHECK(parts >= 1 && parts <= m->spec.n_entries, "%d slices of %d tensors", parts, m->spec.n_entries);
    at[0] = 0;
    at[parts] = m->spec.n_params;
    int prev = 0;  // the tensor the previous slice starts at
    for (int r = 1; r < parts; r++) {
        double target = (double)m->spec.n_params * r / parts;
        int best = prev + 1, last = m->spec.n_entries - (parts - r);  // leave a tensor for each slice after
        for (int i = prev + 1; i <= last; i++)
            if (fabs((double)m->w.table[i].offset - target) < fabs((double)m->w.table[best].offset - target)) best = i;
        at[r] = m->w.table[best].offset;
        prev = best;
    }
}
