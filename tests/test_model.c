// test_model.c: the whole model: gradients for each attention kind, reversibility,
// store-everything agreement, causality, determinism and memory flat in depth.
#include <math.h>
#include <string.h>

#include "../core/common.h"
#include "../core/decode.h"
#include "../core/gemm.h"
#include "../core/model.h"
#include "../core/profile.h"
#include "../core/rng.h"
#include "test.h"

static int *tokens_for(int B, int T, int V, uint64_t seed) {
    int *t = xmalloc((size_t)B * T * sizeof(int));
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < B * T; i++) t[i] = (int)rng_below(&r, V);
    return t;
}

typedef struct {
    Model *m;
    int *tok;
    int B, T;
    ForwardArgs a;
} Ctx;

static double model_loss(void *p) {
    Ctx *c = p;
    return model_forward(c->m, c->tok, c->B, c->T, &c->a);
}

static void check_model_grad(int kind, int causal, float dropout, const char *what) {
    ReformerConfig cfg = test_tiny_config(kind, causal, 2);
    cfg.hidden_dropout = cfg.lsh_dropout = cfg.local_dropout = dropout;
    Model m;
    model_init(&m, &cfg, 2, 32, 42);
    Ctx c = {&m, tokens_for(2, 32, cfg.vocab, 9), 2, 32, {.step = 3, .training = dropout > 0}};
    model_zero_grad(&m);
    model_forward(&m, c.tok, 2, 32, &c.a);
    model_backward(&m, m.act.n_labels, NULL);
    c.a.reuse_buckets = 1;  // hashing is piecewise constant: hold the buckets
    double ana, rel = gradcheck(model_loss, &c, m.w.params, m.w.grads, m.spec.n_params, 77, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "%s: all parameters rel %.2e (g.d %.3e)", what, rel, ana);
    // and tensor by tensor, so a wrong small tensor cannot hide in the total. A small
    // tensor's directional derivative sits near float noise (measured: at g.d = 3e-4 the
    // best step gives 2% error), so this finer check uses 5e-2: a wrong formula is off by
    // order one
    for (int i = 0; i < m.spec.n_entries; i++) {
        ParamEntry *e = &m.w.table[i];
        double a, r = gradcheck(model_loss, &c, m.w.params + e->offset, m.w.grads + e->offset, e->numel,
                                100 + i, &a);
        EXPECT(r < 5e-2 && fabs(a) > 1e-6, "%s: %s rel %.2e (g.d %.3e)", what, e->name, r, a);
    }
    model_free(&m);
}

void test_model_grad_lsh(void) { check_model_grad(ATTN_LSH, 1, 0.0f, "lsh causal"); }
void test_model_grad_lsh_bidirectional(void) { check_model_grad(ATTN_LSH, 0, 0.0f, "lsh bidirectional"); }
void test_model_grad_local(void) { check_model_grad(ATTN_LOCAL, 1, 0.0f, "local causal"); }
void test_model_grad_local_bidirectional(void) { check_model_grad(ATTN_LOCAL, 0, 0.0f, "local bidirectional"); }
void test_model_grad_full(void) { check_model_grad(ATTN_FULL, 1, 0.0f, "full causal"); }
void test_model_grad_full_bidirectional(void) { check_model_grad(ATTN_FULL, 0, 0.0f, "full bidirectional"); }
void test_model_grad_dropout(void) { check_model_grad(-1, 1, 0.2f, "mixed layers with dropout"); }

void test_reversibility_12_layers(void) {
    // run the layers by hand, keep every layer's input, and check that the
    // backward pass recomputes each one from the layer above
    ReformerConfig cfg = test_tiny_config(-1, 1, 12);
    Model m;
    model_init(&m, &cfg, 1, 32, 5);
    int *tok = tokens_for(1, 32, cfg.vocab, 3);
    size_t n = 32 * (size_t)cfg.d_model;
    float *saved = xmalloc(13 * 2 * n * 4);
    model_forward(&m, tok, 1, 32, &(ForwardArgs){0});
    // rebuild the per-layer inputs by running the same layers again from the embedding
    float *x1 = xmalloc(n * 4), *x2 = xmalloc(n * 4);
    EmbedShape e = {32, cfg.d_model, cfg.vocab, {4, 8}, {4, 8}, 0.0f, 0, 0};
    embedding_forward(x1, tok, m.w.p.wte, m.w.p.pos0, m.w.p.pos1, &e);
    memcpy(x2, x1, n * 4);
    for (int l = 0; l < 12; l++) {
        memcpy(saved + (2 * l) * n, x1, n * 4);
        memcpy(saved + (2 * l + 1) * n, x2, n * 4);
        LayerPass pass = {32, 1, 0, 0, 0, NULL};
        LayerWork w = plan_scratch_views(&m.spec, m.work.shared).layer;
        BucketOrder reuse = {m.act.sorted + l * m.act.sorted_per_layer, 0, NULL};
        reversible_forward(x1, x2, &reuse, &m.w.p.layer[l], &m.spec.shape[l], &pass, &w, NULL);
    }
    EXPECT(max_rel_diff(x1, m.act.x1, n) == 0.0 && max_rel_diff(x2, m.act.x2, n) == 0.0, "replay differs");
    // walk down: each inverse must give the saved input
    float *d1 = xcalloc(n, 4), *d2 = xcalloc(n, 4);
    double worst = 0;
    for (int l = 11; l >= 0; l--) {
        LayerPass pass = {32, 1, 0, 0, 0, NULL};
        LayerWork w = plan_scratch_views(&m.spec, m.work.shared).layer;
        reversible_backward(x1, x2, d1, d2, &m.w.g.layer[l], m.act.sorted + l * m.act.sorted_per_layer,
                            &m.w.p.layer[l], &m.spec.shape[l], &pass, &w, NULL);
        worst = fmax(worst, max_rel_diff(x1, saved + (2 * l) * n, n));
        worst = fmax(worst, max_rel_diff(x2, saved + (2 * l + 1) * n, n));
    }
    printf("    worst relative error of a recomputed layer input over 12 layers: %.2e\n", worst);
    EXPECT(worst < 1e-4, "recomputed inputs differ by %.2e", worst);
    model_free(&m);
}

void test_reversible_equals_store_everything(void) {
    ReformerConfig cfg = test_tiny_config(-1, 1, 6);
    cfg.hidden_dropout = cfg.lsh_dropout = cfg.local_dropout = 0.1f;
    Model m;
    // the sums below are taken kernel by kernel, as the split path does
    model_init_mode(&m, &cfg, 2, 32, 8, EXEC_SPLIT_KERNELS);
    ForwardArgs a = {.training = 1};
    int *tok = tokens_for(2, 32, cfg.vocab, 4);
    size_t n = 2 * 32 * (size_t)cfg.d_model;
    // reversible
    model_zero_grad(&m);
    model_forward(&m, tok, 2, 32, &a);
    model_backward(&m, m.act.n_labels, NULL);
    float *rev = xmalloc(m.spec.n_params * 4);
    memcpy(rev, m.w.grads, m.spec.n_params * 4);
    // store everything: forward keeping each layer's input, backward from the stored values
    a.reuse_buckets = 1;
    model_zero_grad(&m);
    model_forward(&m, tok, 2, 32, &a);
    float *store = xmalloc(7 * 2 * n * 4);
    float *x1 = store + 12 * n, *x2 = store + 13 * n;  // slot 6: the top
    {
        EmbedShape e = {32, cfg.d_model, cfg.vocab, {4, 8}, {4, 8}, cfg.hidden_dropout, 0, 0};
        for (int b = 0; b < 2; b++) {
            e.stream = model_embed_stream(&m, 0, b);
            embedding_forward(store + b * n / 2, tok + b * 32, m.w.p.wte, m.w.p.pos0, m.w.p.pos1, &e);
        }
        memcpy(store + n, store, n * 4);
        for (int l = 0; l < 6; l++) {
            LayerPass pass = {32, 2, 1, model_layer_stream(&m, 0, l), 0, NULL};
            LayerWork w = plan_scratch_views(&m.spec, m.work.shared).layer;
            float *y1 = store + (2 * l + 2) * n, *y2 = store + (2 * l + 3) * n;
            memcpy(y1, store + 2 * l * n, n * 4);
            memcpy(y2, store + (2 * l + 1) * n, n * 4);
            BucketOrder reuse = {m.act.sorted + l * m.act.sorted_per_layer, 0, NULL};
            reversible_forward(y1, y2, &reuse, &m.w.p.layer[l], &m.spec.shape[l], &pass, &w, NULL);
        }
    }
    EXPECT(max_rel_diff(x1, m.act.x1, n) == 0.0, "stored forward differs from model forward");
    // backward with the stored inputs: no inversion anywhere
    float *d1 = xcalloc(n, 4), *d2 = xcalloc(n, 4);
    HeadShape hs = {32, cfg.d_model, cfg.vocab, cfg.head_chunk, 0, 0, cfg.ln_eps, cfg.hidden_dropout, 0, 0, 1};
    for (int b = 0; b < 2; b++) {
        hs.stream = model_head_stream(&m, 0, b);
        lm_head_backward(d1 + b * n / 2, d2 + b * n / 2, &m.w.g.head, 1.0f / (2 * 31), x1 + b * n / 2,
                         x2 + b * n / 2, tok + b * 32, &m.w.p.head, &hs, plan_scratch_views(&m.spec, m.work.shared).head);
    }
    for (int l = 5; l >= 0; l--) {
        uint64_t st = model_layer_stream(&m, 0, l);
        LayerShape s = layer_shape_at(&m.spec.shape[l], &(LayerPass){32, 2, 1, st, 0, NULL});
        AttnWork aw = attention_work_views(plan_scratch_views(&m.spec, m.work.shared).layer.attn, &s.attn);
        const float *in2 = store + (2 * l + 1) * n;
        const float *y1 = store + (2 * l + 2) * n;
        for (int b = 0; b < 2; b++) {
            size_t o = b * n / 2;
            FfnShape f = s.ffn;
            f.stream = reversible_ffn_stream(st, b);
            // y2 = x2 + G(y1): dy1 += G'(y1)^T dy2
            ffn_backward(d1 + o, &m.w.g.layer[l].ffn, NULL, d2 + o, y1 + o, &m.w.p.layer[l].ffn, 32, &f, plan_scratch_views(&m.spec, m.work.shared).layer.ffn, NULL);
            // y1 = x1 + F(x2): dx2 = dy2 + F'(x2)^T dy1
            attention_backward(d2 + o, &m.w.g.layer[l].attn, NULL, d1 + o,
                               m.act.sorted + l * m.act.sorted_per_layer + b * (m.act.sorted_per_layer / 2), in2 + o,
                               &m.w.p.layer[l].attn, &s.attn, reversible_attn_stream(st, b), &aw, NULL);
        }
    }
    for (size_t i = 0; i < n; i++) d1[i] += d2[i];
    EmbedShape e = {32, cfg.d_model, cfg.vocab, {4, 8}, {4, 8}, cfg.hidden_dropout, 0, 0};
    for (int b = 0; b < 2; b++) {
        e.stream = model_embed_stream(&m, 0, b);
        embedding_backward(m.w.g.wte, m.w.g.pos0, m.w.g.pos1, d1 + b * n / 2, tok + b * 32, &e);
    }
    double d = max_rel_diff(m.w.grads, rev, m.spec.n_params);
    printf("    reversible vs store-everything gradients: max relative difference %.2e\n", d);
    EXPECT(d < 1e-4, "gradients differ by %.2e", d);
    // every layer keeping its activations is store-everything exactly: the same inputs, the
    // same internals, only read instead of recomputed
    Model k;
    model_init_mode(&k, &cfg, 2, 32, 8, EXEC_SPLIT_KERNELS);
    model_keep_layers(&k, 6);
    model_zero_grad(&k);
    model_forward(&k, tok, 2, 32, &(ForwardArgs){.training = 1});
    model_backward(&k, k.act.n_labels, NULL);
    EXPECT(memcmp(k.w.grads, m.w.grads, m.spec.n_params * 4) == 0, "kept activations differ from store-everything by %.2e",
           max_rel_diff(k.w.grads, m.w.grads, m.spec.n_params));
    model_free(&k);
    model_free(&m);
}

// Loss and gradients of one training step with the top `kept` layers keeping activations.
static double kept_step(const ReformerConfig *cfg, int kept, int T, float *grads) {
    Model m;
    model_init(&m, cfg, 2, 32, 9);
    model_keep_layers(&m, kept);
    int *tok = tokens_for(2, T, cfg->vocab, 10);
    model_zero_grad(&m);
    double loss = model_forward(&m, tok, 2, T, &(ForwardArgs){.training = 1, .step = 3});
    model_backward(&m, m.act.n_labels, NULL);
    memcpy(grads, m.w.grads, m.spec.n_params * 4);
    model_free(&m);
    xfree(tok);
    return loss;
}

void test_kept_activations_match_recompute(void) {
    int kinds[2] = {-1, ATTN_LSH}, lens[2] = {32, 24}, kept[3] = {1, 3, 6};
    double worst = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 2; i++) {
            ReformerConfig cfg = test_tiny_config(kinds[k], 1, 6);
            cfg.hidden_dropout = cfg.lsh_dropout = cfg.local_dropout = 0.1f;
            cfg.init_std = 0.02f;
            size_t n;
            plan_bytes_needed(&cfg, 2, 32, &n);
            float *base = xmalloc(n * 4), *g = xmalloc(n * 4);
            double loss0 = kept_step(&cfg, 0, lens[i], base);
            for (int j = 0; j < 3; j++) {
                double loss = kept_step(&cfg, kept[j], lens[i], g);
                EXPECT(loss == loss0, "kind %d, T %d, %d kept: the forward changed", kinds[k], lens[i], kept[j]);
                double d = max_rel_diff(g, base, n);
                EXPECT(d < 1e-6, "kind %d, T %d, %d kept: gradients differ by %.2e", kinds[k], lens[i], kept[j], d);
                worst = fmax(worst, d);
            }
            xfree(base);
            xfree(g);
        }
    printf("    kept activations vs recompute: gradients within %.2e (max relative)\n", worst);
}

// The dense part of plan_flops_split is what the dense layers' sgemm calls run: a training
// step's products counted by core/linear.c equal it exactly, with and without kept layers, so
// bench's MFU and its "lost" shares stand on counted FLOPs, not on a formula alone.
void test_flop_count_matches_products(void) {
    int kinds[3] = {-1, ATTN_LSH, ATTN_FULL}, kept[2] = {0, 2};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 2; j++) {
            ReformerConfig cfg = test_tiny_config(kinds[k], 1, 4);
            Model m;
            model_init_mode(&m, &cfg, 2, 32, 9, EXEC_SPLIT_KERNELS);  // one thread's calls are all the calls
            model_keep_layers(&m, kept[j]);
            int *tok = tokens_for(2, 32, cfg.vocab, 10);
            model_zero_grad(&m);
            profile_reset();
            model_forward(&m, tok, 2, 32, &(ForwardArgs){.training = 1});
            model_backward(&m, m.act.n_labels, NULL);
            double part[FLOPS_PARTS];
            plan_flops_split(&cfg, 32, 1, kept[j], part);
            EXPECT(profile_gemm_flops == part[FLOPS_DENSE] * 2 * 32, "kind %d, %d kept: sgemm ran %.0f FLOPs, counted %.0f",
                   kinds[k], kept[j], profile_gemm_flops, part[FLOPS_DENSE] * 2 * 32);
            model_free(&m);
            xfree(tok);
        }
}

static void check_causal(int kind) {
    ReformerConfig cfg = test_tiny_config(kind, 1, 3);
    Model m;
    model_init(&m, &cfg, 1, 32, 11);
    int *tok = tokens_for(1, 32, cfg.vocab, 12);
    float *a = xmalloc(32 * cfg.vocab * 4), *b = xmalloc(32 * cfg.vocab * 4);
    model_forward(&m, tok, 1, 32, &(ForwardArgs){0});
    model_logits(&m, a);
    // the bucket order is shared; masking must still hide the future
    ForwardArgs reuse = {.reuse_buckets = 1};
    for (int t = 1; t < 32; t += 5) {
        int old = tok[t];
        tok[t] = (old + 1 + t % (cfg.vocab - 1)) % cfg.vocab;
        model_forward(&m, tok, 1, 32, &reuse);
        model_logits(&m, b);
        EXPECT(memcmp(a, b, (size_t)t * cfg.vocab * 4) == 0, "kind %d: logits before %d changed", kind, t);
        EXPECT(memcmp(a + t * cfg.vocab, b + t * cfg.vocab, cfg.vocab * 4) != 0,
               "kind %d: logit at %d did not change (test would be vacuous)", kind, t);
        tok[t] = old;
    }
    model_free(&m);
}

void test_no_causal_leak(void) {
    check_causal(ATTN_LSH);
    check_causal(ATTN_LOCAL);
    check_causal(ATTN_FULL);
    check_causal(-1);
}

// A batch that runs one sequence per thread gives the same bits with any team; with acc its
// gradient is the single-threaded split path's exactly (each sequence formed alone, added in
// order), and without acc within float rounding of it.
void test_model_by_sequence_any_team(void) {
    ReformerConfig cfg = test_tiny_config(-1, 1, 4);
    cfg.hidden_dropout = cfg.lsh_dropout = cfg.local_dropout = 0.1f;
    cfg.init_std = 0.02f;
    enum { B = 6, T = 32, RUNS = 4 };
    int *tok = tokens_for(B, T, cfg.vocab, 21);
    size_t n;
    plan_bytes_needed(&cfg, B, T, &n);
    int teams[RUNS] = {1, 2, 3, 0};  // 0: the split path on one thread
    float *g[RUNS];
    double *acc[RUNS], loss[RUNS];
    for (int i = 0; i < RUNS; i++) {
        threads_set(teams[i] ? teams[i] : 1);
        Model m;
        model_init_mode(&m, &cfg, B, T, 5, teams[i] ? EXEC_AUTO : EXEC_SPLIT_KERNELS);
        ForwardArgs a = {.step = 2, .training = 1};
        model_zero_grad(&m);
        loss[i] = model_forward(&m, tok, B, T, &a);
        model_backward(&m, m.act.n_labels, NULL);
        g[i] = xmalloc(n * 4);
        memcpy(g[i], m.w.grads, n * 4);
        acc[i] = xcalloc(n, sizeof(double));
        model_forward(&m, tok, B, T, &a);
        model_backward(&m, m.act.n_labels, acc[i]);
        model_free(&m);
    }
    threads_set(2);
    for (int i = 1; i < RUNS; i++) {
        EXPECT(loss[i] == loss[0], "run %d: loss %.17g vs %.17g", i, loss[i], loss[0]);
        EXPECT(memcmp(acc[i], acc[0], n * sizeof(double)) == 0, "run %d: the summed gradient differs", i);
    }
    for (int i = 1; i < 3; i++) EXPECT(memcmp(g[i], g[0], n * 4) == 0, "team %d: gradients differ", teams[i]);
    double d = max_rel_diff(g[3], g[0], n);
    printf("    one sequence per thread vs split kernels: gradients within %.2e (max relative)\n", d);
    EXPECT(d < 1e-6, "split path differs by %.2e", d);
    for (int i = 0; i < RUNS; i++) {
        xfree(g[i]);
        xfree(acc[i]);
    }
    xfree(tok);
}

void test_determinism(void) {
    ReformerConfig cfg = test_tiny_config(-1, 1, 4);
    cfg.hidden_dropout = cfg.lsh_dropout = cfg.local_dropout = 0.1f;
    int *tok = tokens_for(2, 32, cfg.vocab, 1);
    double loss[2];
    float *grads[2];
    for (int run = 0; run < 2; run++) {
        Model m;
        model_init(&m, &cfg, 2, 32, 123);
        model_zero_grad(&m);
        loss[run] = model_forward(&m, tok, 2, 32, &(ForwardArgs){.step = 17, .training = 1});
        model_backward(&m, m.act.n_labels, NULL);
        grads[run] = xmalloc(m.spec.n_params * 4);
        memcpy(grads[run], m.w.grads, m.spec.n_params * 4);
        size_t np = m.spec.n_params;
        model_free(&m);
        if (run == 1) EXPECT(memcmp(grads[0], grads[1], np * 4) == 0, "gradients differ");
    }
    EXPECT(memcmp(&loss[0], &loss[1], sizeof(double)) == 0, "loss %.17g vs %.17g", loss[0], loss[1]);
}

static size_t peak_scratch(int layers) {
    ReformerConfig cfg = test_tiny_config(ATTN_LSH, 1, layers);
    size_t before = mem_live_bytes();
    mem_reset_peak();
    Model m;
    model_init(&m, &cfg, 1, 64, 1);
    int *tok = tokens_for(1, 64, cfg.vocab, 2);
    model_forward(&m, tok, 1, 64, &(ForwardArgs){0});
    model_backward(&m, m.act.n_labels, NULL);
    size_t peak = mem_peak_bytes() - before;
    size_t params = m.spec.n_params * sizeof(float) * 2 + m.spec.n_entries * sizeof(ParamEntry);
    size_t records = m.act.sorted_per_layer * layers * sizeof(int);
    model_free(&m);
    xfree(tok);
    return peak - params - records;
}

void test_memory_flat_in_depth(void) {
    size_t a = peak_scratch(2), b = peak_scratch(12);
    printf("    peak bytes less parameters and bucket records: 2 layers %zu, 12 layers %zu\n", a, b);
    EXPECT(a == b, "activation memory grows with depth: %zu vs %zu", a, b);
}

// Every buffer starts as NaN bytes (mem_poison): a value read before it is written shows up
// as a NaN in the loss, the gradients, the logits or a decoded step; the scratch area the
// attention, feed-forward and head share is poisoned again before each of them (what one
// leaves there is finite, and would hide the next one's misread). Found linear_forward's
// bias path reading its output with beta 0 (0 x a stale Inf is NaN): it depended on what the
// allocator recycled.
void test_no_read_before_write(void) {
    mem_poison(1);
    for (int kind = -1; kind <= ATTN_FULL; kind++) {
        ReformerConfig cfg = test_tiny_config(kind, 1, 3);
        cfg.hidden_dropout = cfg.lsh_dropout = cfg.local_dropout = 0.1f;
        Model m;
        model_init(&m, &cfg, 2, 32, 3);
        int *tok = tokens_for(2, 32, cfg.vocab, 4);
        model_zero_grad(&m);
        double loss = model_forward(&m, tok, 2, 32, &(ForwardArgs){.step = 1, .training = 1});
        double *acc = xcalloc(m.spec.n_params, sizeof(double));
        model_backward(&m, m.act.n_labels, acc);
        int bad = !isfinite(loss);
        for (size_t i = 0; i < m.spec.n_params; i++) bad |= !isfinite(acc[i]);
        float *logits = xmalloc((size_t)2 * 32 * cfg.vocab * sizeof(float));
        model_forward(&m, tok, 2, 32, &(ForwardArgs){0});
        model_logits(&m, logits);
        for (size_t i = 0; i < (size_t)2 * 32 * cfg.vocab; i++) bad |= !isfinite(logits[i]);
        Decoder d;
        decoder_init(&d, &m, 32, NULL);
        decoder_prefill(&d, tok, 5, logits);
        for (int t = 5; t < 32; t++) decoder_step(&d, tok[t], logits);
        for (int v = 0; v < cfg.vocab; v++) bad |= !isfinite(logits[v]);
        EXPECT(!bad, "kind %d: a NaN from a buffer read before it was written", kind);
        decoder_free(&d);
        xfree(acc);
        xfree(logits);
        xfree(tok);
        model_free(&m);
    }
    mem_poison(0);
}

// bf16 holds the attention's LayerNorm output, and where the block products round (a bf16 block
// kernel) LSH's gathered values, in half the floats of fp32's (each is rounded once, as every
// product that reads it would round it): a model planned in bf16 trains to the bits of one planned
// in fp32 and run in bf16 (whose buffers are whole), mixed layers or LSH alone; LSH alone takes
// T * C * 2 + NR * T * HS * 2 fewer bytes a sequence (the values' part only where they are held so).
void test_model_bf16_half_layernorm_output(void) {
    char err[256];
    if (gemm_set_precision(PRECISION_BF16, err, sizeof(err))) {  // refusal itself: test_gemm
        printf("    %s\n", err);
        return;
    }
    enum { B = 2, T = 32 };
    int kinds[2] = {-1, ATTN_LSH};
    for (int k = 0; k < 2; k++) {
        ReformerConfig cfg = test_tiny_config(kinds[k], 1, 4);
        int *tok = tokens_for(B, T, cfg.vocab, 7);
        Model m[2];
        double loss[2];
        size_t bytes[2];
        for (int i = 0; i < 2; i++) {
            gemm_set_precision(i ? PRECISION_BF16 : PRECISION_FP32, err, sizeof(err));
            model_init_mode(&m[i], &cfg, B, T, 5, EXEC_SPLIT_KERNELS);  // planned in fp32, then in bf16
            gemm_set_precision(PRECISION_BF16, err, sizeof(err));
            EXPECT(m[i].spec.shape[0].attn.h_bf16 == i, "model %d: h_bf16 %d", i, m[i].spec.shape[0].attn.h_bf16);
            ForwardArgs a = {.step = 1, .training = 1};
            model_zero_grad(&m[i]);
            loss[i] = model_forward(&m[i], tok, B, T, &a);
            model_backward(&m[i], m[i].act.n_labels, NULL);
            bytes[i] = model_activation_bytes(&m[i]);
        }
        EXPECT(loss[0] == loss[1], "kind %d: loss %.17g vs %.17g", kinds[k], loss[0], loss[1]);
        EXPECT(!memcmp(m[0].w.grads, m[1].w.grads, m[0].spec.n_params * sizeof(float)), "kind %d: gradients differ",
               kinds[k]);
        size_t values = gemm_block_rounds() ? (size_t)cfg.n_hashes * T * cfg.d_head * 2 : 0;
        if (kinds[k] == ATTN_LSH)
            EXPECT(bytes[0] - bytes[1] == (size_t)T * cfg.d_model * 2 + values, "activations %zu vs %zu bytes", bytes[0],
                   bytes[1]);
        else
            EXPECT(bytes[1] < bytes[0], "mixed layers: activations %zu vs %zu bytes", bytes[0], bytes[1]);
        for (int i = 0; i < 2; i++) model_free(&m[i]);
        xfree(tok);
    }
    gemm_set_precision(PRECISION_FP32, err, sizeof(err));
}
