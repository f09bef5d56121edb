// test_hf.c: the oracle. Fixtures from HuggingFace's ReformerModelWithLMHead
// (tests/hf/make_fixtures.py, run once where transformers 5.17 is installed): with HF's weights and
// HF's LSH rotations, our logits, loss and every parameter gradient must match.
//
// transformers 5.17 does not add lm_head.bias to the logits (its gradient is None in the
// fixtures: the tie to the decoder is gone), so the bias is zeroed here to compare the rest,
// and its gradient is not compared. Several hash rounds matched only once the round weights
// and attention probabilities used HF's float-rounded logsumexp (attention_lsh.c).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cmd/checkpoint.h"
#include "../cmd/config.h"
#include "../cmd/hf_model.h"
#include "../cmd/safetensors.h"
#include "../core/common.h"
#include "../core/decode.h"
#include "../core/model.h"
#include "test.h"

#define FIXTURES "tests/hf/fixtures"

// Builds m for batches of B sequences of T tokens (T 0: the model's positions) from fixture
// directory `name`, with HF's weights and the LM head's bias zeroed (HF 5.17 leaves it out),
// HF's rotations into given (a ForwardArgs.rotations list, held by *rot), and opens its
// fixture.safetensors as fx. Returns 0, or -1 after EXPECT.
static int open_case(const char *name, int B, int T, Model *m, const float **given, float **rot, Safetensors *fx) {
    char dir[512], path[600], err[1024];
    snprintf(dir, sizeof(dir), "%s/%s", FIXTURES, name);
    ReformerConfig cfg;
    int max_len;
    if (hf_read_config(dir, &cfg, &max_len, NULL, err, sizeof(err))) {
        EXPECT(0, "%s", err);
        return -1;
    }
    model_init(m, &cfg, B, T ? T : max_len, 1);
    EXPECT(hf_load_weights(dir, m, err, sizeof(err)) == 0, "%s: %s", name, err);
    if (cfg.head == HEAD_LM) memset(m->w.p.head.b, 0, cfg.vocab * sizeof(float));
    snprintf(path, sizeof(path), "%s/fixture.safetensors", dir);
    *rot = NULL;
    EXPECT(hf_load_rotations(path, m, given, rot, err, sizeof(err)) == 0, "%s", err);
    if (safetensors_open(fx, path, err, sizeof(err))) {
        EXPECT(0, "%s", err);
        model_free(m);
        free(*rot);
        return -1;
    }
    return 0;
}

// The labels HF's loss used (ForwardArgs.labels): none for ReformerModelWithLMHead (ours are the
// next tokens), input_ids for ReformerForMaskedLM (each position's own), the classes for
// ReformerForSequenceClassification. Fills labels from the fixture; returns NULL for the first.
static const int *hf_labels(const char *name, const Model *m, Safetensors *fx, int *labels, int n) {
    char dir[512], err[1024];
    snprintf(dir, sizeof(dir), "%s/%s", FIXTURES, name);
    int objective, max_len;
    ReformerConfig cfg;
    EXPECT(hf_read_config(dir, &cfg, &max_len, &objective, err, sizeof(err)) == 0, "%s", err);
    int nd;
    long long shape[8];
    // the bidirectional kernel cases took our next-token loss from a masked LM's logits: no labels
    if ((m->spec.cfg.head == HEAD_LM && objective == OBJECTIVE_NEXT) || safetensors_numel(fx, "labels", &nd, shape) < 0)
        return NULL;
    EXPECT(safetensors_read_int(fx, "labels", labels, n, err, sizeof(err)) == 0, "%s", err);
    return labels;
}

// Logits a forward of B sequences of T tokens gives: (B, T, V), or (B, K) for a classifier.
static size_t logit_count(const Model *m, int B, int T) {
    return m->spec.cfg.head == HEAD_CLASSIFIER ? (size_t)B * m->spec.cfg.classes : (size_t)B * T * m->spec.cfg.vocab;
}

static void check_case(const char *name) {
    char err[1024];
    int B = 2, T = 32;
    Model m;
    float *rot;
    Safetensors fx;
    const float *given[MAX_LAYERS];
    if (open_case(name, B, T, &m, given, &rot, &fx)) return;
    int tok[64], lab[64];
    EXPECT(safetensors_read_int(&fx, "input_ids", tok, B * T, err, sizeof(err)) == 0, "%s", err);
    const int *labels = hf_labels(name, &m, &fx, lab, m.spec.cfg.head == HEAD_CLASSIFIER ? B : B * T);
    model_zero_grad(&m);
    // HF ran in train mode (dropout 0) to take gradients
    double loss = model_forward(&m, tok, B, T, &(ForwardArgs){.training = 1, .rotations = given, .labels = labels});
    size_t nl = logit_count(&m, B, T);
    float *logits = xmalloc(nl * sizeof(float)), *want = xmalloc(nl * sizeof(float));
    model_logits(&m, logits);
    float hf_loss;
    EXPECT(safetensors_read_f32(&fx, "loss", &hf_loss, 1, err, sizeof(err)) == 0, "%s", err);
    EXPECT(safetensors_read_f32(&fx, "logits", want, nl, err, sizeof(err)) == 0, "%s", err);
    double dl = max_rel_diff(logits, want, nl);
    printf("    %s: loss %.7f (HF %.7f), logits max rel diff %.2e\n", name, loss, hf_loss, dl);
    EXPECT(dl < 1e-4, "%s: logits differ by %.2e", name, dl);
    EXPECT(fabs(loss - hf_loss) / fabs(hf_loss) < 1e-5, "%s: loss %.7f vs %.7f", name, loss, hf_loss);
    model_backward(&m, m.act.n_labels, NULL);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < m.spec.n_entries; i++) {
        const ParamEntry *e = &m.w.table[i];
        char key[160];
        snprintf(key, sizeof(key), "grad.%s", e->name);
        int nd;
        long long shape[8];
        if (safetensors_numel(&fx, key, &nd, shape) < 0 && !strcmp(e->name, "lm_head.decoder.bias"))
            snprintf(key, sizeof(key), "grad.lm_head.bias");
        if (!strcmp(e->name, "lm_head.decoder.bias")) continue;  // unused by HF 5.17
        float *g = xmalloc(e->numel * sizeof(float));
        EXPECT(safetensors_read_f32(&fx, key, g, e->numel, err, sizeof(err)) == 0, "%s", err);
        double d = max_rel_diff(m.w.grads + e->offset, g, e->numel);
        if (d > worst) { worst = d; worst_name = e->name; }
        EXPECT(d < 1e-3, "%s: gradient of %s differs by %.2e", name, e->name, d);
        xfree(g);
    }
    printf("    %s: worst gradient max rel diff %.2e (%s)\n", name, worst, worst_name);
    free(rot);
    xfree(logits);
    xfree(want);
    safetensors_close(&fx);
    model_free(&m);
}

void test_hf_oracle_local(void) { check_case("local_only"); }
void test_hf_oracle_lsh_one_hash_two_back(void) { check_case("lsh_one_hash_two_back"); }
void test_hf_oracle_lsh_two_hashes(void) { check_case("lsh_two_hashes"); }
void test_hf_oracle_lsh_local_gelu(void) { check_case("lsh_local_gelu"); }
void test_hf_oracle_mixed_factorised_relu(void) { check_case("mixed_factorised_relu"); }
// bidirectional (ReformerForMaskedLM's weights and head, our shifted loss), chunks after 1
void test_hf_oracle_bidirectional_lsh_local(void) { check_case("bidir_lsh_local_after"); }
void test_hf_oracle_bidirectional_four_hashes(void) { check_case("bidir_lsh_four_hashes"); }
// ReformerForMaskedLM with HF's own loss (labels=input_ids, unshifted): logits, loss, gradients
void test_hf_oracle_masked_lm(void) { check_case("mlm_lsh_local"); }
// ReformerForSequenceClassification (first position, dense + tanh + out_proj): the same
void test_hf_oracle_sequence_classification(void) { check_case("class_lsh_local"); }

void test_hf_export_roundtrip(void) {
    // HF directory -> our model -> exported directory -> our model: the same bits
    char src[512], err[1024], dir[] = "/tmp/reformer-export-XXXXXX";
    snprintf(src, sizeof(src), "%s/mixed_factorised_relu", FIXTURES);
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    ReformerConfig a, b;
    int la, lb;
    EXPECT(hf_read_config(src, &a, &la, NULL, err, sizeof(err)) == 0, "%s", err);
    Model ma, mb;
    model_init(&ma, &a, 1, 32, 1);
    EXPECT(hf_load_weights(src, &ma, err, sizeof(err)) == 0, "%s", err);
    EXPECT(hf_export(dir, &ma, 0, err, sizeof(err)) == 0, "%s", err);
    EXPECT(hf_read_config(dir, &b, &lb, NULL, err, sizeof(err)) == 0, "%s", err);
    EXPECT(la == lb && b.n_layers == a.n_layers && b.buckets.n_factors == 2 && b.buckets.factor[1] == 4 &&
               b.act == a.act && b.causal == a.causal && b.hash_seed == a.hash_seed &&
               memcmp(b.attn, a.attn, sizeof(a.attn)) == 0, "config changed on the way");
    model_init(&mb, &b, 1, 32, 1);
    EXPECT(hf_load_weights(dir, &mb, err, sizeof(err)) == 0, "%s", err);
    EXPECT(ma.spec.n_params == mb.spec.n_params && memcmp(ma.w.params, mb.w.params, ma.spec.n_params * 4) == 0,
           "parameters differ after export and load");
    model_free(&ma);
    model_free(&mb);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
}

// Cached greedy decoding against HF's past_buckets_states path: the prompt pass, then one
// token at a time (HF's own greedy choices fed back), logits compared at every step.
static void check_decode(const char *name, int prompt_len, int steps) {
    char err[1024];
    Model m;
    float *rot;
    Safetensors fx;
    const float *given[MAX_LAYERS];
    if (open_case(name, 1, 0, &m, given, &rot, &fx)) return;
    int V = m.spec.cfg.vocab, prompt[64], gen[64];
    float *want = xmalloc((size_t)(steps + 1) * V * sizeof(float)), *got = xmalloc((size_t)V * sizeof(float));
    EXPECT(safetensors_read_int(&fx, "prompt", prompt, prompt_len, err, sizeof(err)) == 0, "%s", err);
    EXPECT(safetensors_read_int(&fx, "generated", gen, steps, err, sizeof(err)) == 0, "%s", err);
    EXPECT(safetensors_read_f32(&fx, "logits", want, (size_t)(steps + 1) * V, err, sizeof(err)) == 0, "%s", err);
    Decoder d;
    decoder_init(&d, &m, m.spec.T, given);
    double worst = 0.0;
    int agree = 1;
    for (int i = 0; i <= steps; i++) {
        if (i == 0) decoder_prefill(&d, prompt, prompt_len, got);
        else decoder_step(&d, gen[i - 1], got);
        double diff = max_rel_diff(got, want + (size_t)i * V, (size_t)V);
        if (diff > worst) worst = diff;
        EXPECT(diff < 1e-4, "%s: step %d logits differ by %.2e", name, i, diff);
        int best = 0;
        for (int v = 1; v < V; v++) best = got[v] > got[best] ? v : best;
        if (i < steps) agree &= best == gen[i];
    }
    EXPECT(agree, "%s: our greedy choices differ from HF's", name);
    printf("    %s: %d decoding steps, worst logits max rel diff %.2e\n", name, steps + 1, worst);
    decoder_free(&d);
    free(rot);
    xfree(want);
    xfree(got);
    safetensors_close(&fx);
    model_free(&m);
}

void test_hf_decode_local_lsh(void) { check_decode("decode_local_lsh", 8, 20); }
void test_hf_decode_short_prompt(void) { check_decode("decode_short_prompt", 3, 24); }

// A directory written by `reformer export` (a 2-layer local + LSH copy-task model), loaded by
// transformers 5.17 with no missing or unexpected keys (tests/hf/check_export.py, run where transformers is installed).
// With the rotations HF drew, its loss on data.bin is 2.5116345882 as loaded (5.17 leaves
// lm_head.bias out) and 2.5174028873 with the bias added to the logits, as our model does.
void test_hf_loads_our_export(void) {
    const char *dir = FIXTURES "/exported_by_reformer";
    char err[1024];
    ReformerConfig cfg;
    int max_len;
    EXPECT(hf_read_config(dir, &cfg, &max_len, NULL, err, sizeof(err)) == 0, "%s", err);
    int tok[64];
    FILE *f = fopen(FIXTURES "/exported_by_reformer/data.bin", "rb");
    for (int t = 0; t < 64; t++) tok[t] = f ? fgetc(f) : 0;
    if (f) fclose(f);
    Model m;
    model_init(&m, &cfg, 1, 64, 1);
    float *rot = NULL;
    EXPECT(hf_load_weights(dir, &m, err, sizeof(err)) == 0, "%s", err);
    const float *given[MAX_LAYERS];
    EXPECT(hf_load_rotations(FIXTURES "/exported_by_reformer/rotations.safetensors", &m, given, &rot, err,
                             sizeof(err)) == 0, "%s", err);
    ForwardArgs a = {.rotations = given};
    double with_bias = model_forward(&m, tok, 1, 64, &a);
    memset(m.w.p.head.b, 0, cfg.vocab * sizeof(float));
    double as_loaded = model_forward(&m, tok, 1, 64, &a);
    EXPECT(fabs(with_bias / 2.5174028873 - 1) < 1e-5 && fabs(as_loaded / 2.5116345882 - 1) < 1e-5,
           "losses %.10f and %.10f; transformers computed 2.5174028873 and 2.5116345882", with_bias, as_loaded);
    free(rot);
    model_free(&m);
}

// Robustness of the model readers: random damage to a checkpoint, a model.safetensors and a
// config.json must end in 0 or one error line, never a crash (ASan runs this too).
static void damage(const uint8_t *src, size_t n, const char *path, Rng *r) {
    uint8_t *b = malloc(n);
    memcpy(b, src, n);
    int how = (int)rng_below(r, 3);
    if (how == 0)
        for (int k = 1 + (int)rng_below(r, 4); k > 0; k--) b[rng_below(r, (uint32_t)n)] ^= (uint8_t)(1 + rng_below(r, 255));
    else if (how == 1) n = rng_below(r, (uint32_t)n);
    else
        for (size_t k = rng_below(r, (uint32_t)n), e = k + 1 + rng_below(r, 32); k < e && k < n; k++) b[k] = (uint8_t)rng_below(r, 256);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
    free(b);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    uint8_t *b = malloc(1 << 22);
    *n = f ? fread(b, 1, 1 << 22, f) : 0;
    if (f) fclose(f);
    return b;
}

void test_model_readers_survive_random_damage(void) {
    char dir[] = "/tmp/reformer-fuzzm-XXXXXX", path[600], err[1024];
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    const char *src = FIXTURES "/mixed_factorised_relu";
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "cp %s/config.json %s/model.safetensors %s/", src, src, dir);
    EXPECT(system(cmd) == 0, "copy fixture");
    ReformerConfig cfg;
    int max_len;
    EXPECT(hf_read_config(dir, &cfg, &max_len, NULL, err, sizeof(err)) == 0, "%s", err);
    Model m;
    model_init(&m, &cfg, 1, max_len, 1);
    Config c;
    config_default(&c);
    c.model = m.spec.cfg;
    c.data.seq_len = max_len;
    snprintf(path, sizeof(path), "%s/good.ckpt", dir);
    EXPECT(checkpoint_save(path, &c, &m, NULL, &(TrainState){0}, err, sizeof(err)) == 0, "%s", err);
    size_t nc, ns, nj;
    char st_path[600], cfg_path[600], bad_ckpt[600];
    snprintf(st_path, sizeof(st_path), "%s/model.safetensors", dir);
    snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", dir);
    snprintf(bad_ckpt, sizeof(bad_ckpt), "%s/bad.ckpt", dir);
    uint8_t *ck = slurp(path, &nc), *st = slurp(st_path, &ns), *cj = slurp(cfg_path, &nj);
    Rng r;
    rng_seed(&r, 5);
    int refused = 0, total = 0;
    for (int it = 0; it < 200; it++, total += 3) {
        // a checkpoint: config first, then the tensors into a model built from it
        damage(ck, nc, bad_ckpt, &r);
        Config got;
        err[0] = '\0';
        int rc = checkpoint_read_config(bad_ckpt, &got, err, sizeof(err));
        if (!rc) rc = checkpoint_load(bad_ckpt, &m, NULL, &(TrainState){0}, err, sizeof(err));
        refused += rc != 0;
        EXPECT(rc == 0 || (err[0] && !strchr(err, '\n')), "checkpoint: rc %d '%s'", rc, err);
        // model.safetensors, then config.json, each damaged alone
        for (int which = 0; which < 2; which++) {
            damage(which ? cj : st, which ? nj : ns, which ? cfg_path : st_path, &r);
            err[0] = '\0';
            ReformerConfig hc;
            rc = hf_read_config(dir, &hc, &max_len, NULL, err, sizeof(err));
            if (!rc && !memcmp(&hc, &cfg, sizeof(cfg))) rc = hf_load_weights(dir, &m, err, sizeof(err));
            refused += rc != 0;
            EXPECT(rc == 0 || (err[0] && !strchr(err, '\n')), "%s: rc %d '%s'", which ? "config.json" : "safetensors", rc, err);
            FILE *f = fopen(which ? cfg_path : st_path, "wb");  // restore
            fwrite(which ? cj : st, 1, which ? nj : ns, f);
            fclose(f);
        }
    }
    printf("    %d damaged model files: %d refused with one line\n", total, refused);
    EXPECT(refused > total / 2, "only %d of %d damaged files refused", refused, total);
    free(ck); free(st); free(cj);
    model_free(&m);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
}

// Evaluation of a length the chunks do not divide: HF pads it at the end to a multiple of the
// chunk lengths' lcm (even where every chunk would take the length unpadded), gives the padding
// an LSH bucket of its own and cuts the logits back. Ours, with the same padding
// (plan_padded_length, ForwardArgs.valid): the same logits and loss.
static void check_padded(const char *name, int L, int want_P) {
    char err[1024];
    Model m;
    float *rot;
    Safetensors fx;
    const float *given[MAX_LAYERS];
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", FIXTURES, name);
    ReformerConfig cfg;
    int max_len;
    EXPECT(hf_read_config(dir, &cfg, &max_len, NULL, err, sizeof(err)) == 0, "%s", err);
    int P = (int)plan_padded_length(&cfg, L);
    EXPECT(P == want_P && P <= 64, "%s: %d tokens padded to %d, HF pads to %d", name, L, P, want_P);
    if (P > 64) return;
    if (open_case(name, 1, P, &m, given, &rot, &fx)) return;
    int tok[64] = {0}, lab[64] = {0};
    EXPECT(safetensors_read_int(&fx, "input_ids", tok, L, err, sizeof(err)) == 0, "%s", err);
    int cls = m.spec.cfg.head == HEAD_CLASSIFIER;
    const int *labels = hf_labels(name, &m, &fx, lab, cls ? 1 : L);
    double loss = model_forward(&m, tok, 1, P, &(ForwardArgs){.rotations = given, .valid = &L, .labels = labels});
    // ours cover the padding too; HF cut its logits back to the L real positions
    size_t n = logit_count(&m, 1, L);
    float *logits = xmalloc(logit_count(&m, 1, P) * sizeof(float)), *want = xmalloc(n * sizeof(float)), hf_loss;
    model_logits(&m, logits);
    EXPECT(safetensors_read_f32(&fx, "loss", &hf_loss, 1, err, sizeof(err)) == 0, "%s", err);
    EXPECT(safetensors_read_f32(&fx, "logits", want, n, err, sizeof(err)) == 0, "%s", err);
    double dl = max_rel_diff(logits, want, n);
    long long want_labels = cls ? 1 : labels ? L : L - 1;
    printf("    %s: %d tokens padded to %d: loss %.7f (HF %.7f), logits max rel diff %.2e\n", name, L, P, loss, hf_loss, dl);
    EXPECT(dl < 1e-4, "%s: logits differ by %.2e", name, dl);
    EXPECT(fabs(loss - hf_loss) / fabs(hf_loss) < 1e-5 && m.act.n_labels == want_labels, "%s: loss %.7f vs %.7f over %lld labels",
           name, loss, hf_loss, m.act.n_labels);
    free(rot);
    xfree(logits);
    xfree(want);
    safetensors_close(&fx);
    model_free(&m);
}

void test_hf_oracle_padded_lsh_local(void) { check_padded("padded_lsh_local", 27, 32); }
void test_hf_oracle_padded_where_chunks_fit(void) { check_padded("padded_lsh_factorised", 16, 32); }
// bidirectional: the padding is masked as keys, so the real positions match HF's
void test_hf_oracle_padded_masked_lm(void) { check_padded("padded_mlm", 27, 32); }
void test_hf_oracle_padded_classifier(void) { check_padded("padded_class", 21, 24); }
// Directories `reformer export` wrote for a masked LM and a classifier (tiny copy-task and ListOps
// models), loaded by transformers 5.17 as ReformerForMaskedLM and ReformerForSequenceClassification
// with no missing or unexpected keys (tests/hf/check_export_heads.py): with the rotations HF drew,
// our logits and loss are HF's (64 tokens: no padding).
void test_hf_loads_our_export_masked_lm(void) { check_padded("exported_mlm", 64, 64); }
void test_hf_loads_our_export_classifier(void) { check_padded("exported_classifier", 64, 64); }
