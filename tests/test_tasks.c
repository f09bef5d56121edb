// test_tasks.c: what the model learns beyond next tokens: padding that no real position sees,
// the classifier's and the masked LM's gradients, BERT's masking, and ListOps batches.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cmd/batch.h"
#include "../core/class_head.h"
#include "../core/common.h"
#include "../core/model.h"
#include "../core/rng.h"
#include "../data/mlm.h"
#include "test.h"

// Bidirectional, every attention kind, chunks that see one back and one ahead.
static ReformerConfig encoder(int head, int pooling) {
    ReformerConfig c = test_tiny_config(ATTN_LOCAL, 0, 3);
    c.attn[1] = ATTN_LSH;
    c.attn[2] = ATTN_FULL;
    c.lsh_after = c.local_after = 1;
    c.head = head;
    c.classes = head == HEAD_CLASSIFIER ? 5 : 0;
    c.pooling = pooling;
    return c;
}

typedef struct {
    Model *m;
    int *tok;
    ForwardArgs a;
} Ctx;

static double loss_of(void *p) {
    Ctx *c = p;
    return model_forward(c->m, c->tok, 2, 32, &c->a);
}

// Two sequences of 32 positions, the second real for 19 (the rest padding), with labels.
static void check_grad(ReformerConfig cfg, float dropout, const int *labels, const char *what) {
    cfg.hidden_dropout = cfg.lsh_dropout = cfg.local_dropout = dropout;
    Model m;
    model_init(&m, &cfg, 2, 32, 42);
    int tok[64], valid[2] = {32, 19};
    for (int i = 0; i < 64; i++) tok[i] = (i * 7 + 3) % cfg.vocab;
    Ctx c = {&m, tok, {.step = 3, .training = dropout > 0, .valid = valid, .labels = labels}};
    model_zero_grad(&m);
    model_forward(&m, tok, 2, 32, &c.a);
    model_backward(&m, m.act.n_labels, NULL);
    c.a.reuse_buckets = 1;
    double ana, rel = gradcheck(loss_of, &c, m.w.params, m.w.grads, m.spec.n_params, 77, &ana);
    EXPECT(rel < 1e-3 && fabs(ana) > 1e-3, "%s: all parameters rel %.2e (g.d %.3e)", what, rel, ana);
    for (int i = 0; i < m.spec.n_entries; i++) {  // tensor by tensor, as test_model.c
        ParamEntry *e = &m.w.table[i];
        double a, r = gradcheck(loss_of, &c, m.w.params + e->offset, m.w.grads + e->offset, e->numel, 100 + i, &a);
        EXPECT(r < 5e-2 && fabs(a) > 1e-6, "%s: %s rel %.2e (g.d %.3e)", what, e->name, r, a);
    }
    model_free(&m);
}

static const int CLASSES[2] = {3, 1};

void test_model_grad_classifier_first(void) {
    check_grad(encoder(HEAD_CLASSIFIER, POOL_FIRST), 0.0f, CLASSES, "classifier, first position");
}
void test_model_grad_classifier_mean_dropout(void) {
    check_grad(encoder(HEAD_CLASSIFIER, POOL_MEAN), 0.2f, CLASSES, "classifier, mean with dropout");
}
void test_model_grad_classifier_ends(void) {  // the second sequence's last real position is 18
    check_grad(encoder(HEAD_CLASSIFIER, POOL_ENDS), 0.0f, CLASSES, "classifier, first and last positions");
}
void test_model_grad_masked_lm(void) {
    int labels[64];
    for (int i = 0; i < 64; i++) labels[i] = i % 3 ? -1 : (i * 5) % 11;  // a third of the positions scored
    check_grad(encoder(HEAD_LM, 0), 0.0f, labels, "masked LM");
}

// The padding of a bidirectional model is never attended to: whatever tokens it holds, the
// loss, the real positions' logits and every gradient are the same, bit for bit.
static void check_padding_invisible(int head, int pooling) {
    ReformerConfig cfg = encoder(head, pooling);
    Model m;
    model_init(&m, &cfg, 2, 32, 7);
    int tok[64], valid[2] = {21, 32}, labels[64];
    for (int i = 0; i < 64; i++) {
        tok[i] = (i * 5 + 1) % cfg.vocab;
        labels[i] = head == HEAD_CLASSIFIER ? (i < 2 ? 2 + i : -1) : i % 2 ? tok[i] : -1;
    }
    int V = head == HEAD_CLASSIFIER ? cfg.classes : cfg.vocab, per = head == HEAD_CLASSIFIER ? 1 : 32;
    float *logits[2], *grads[2];
    double loss[2];
    for (int k = 0; k < 2; k++) {
        if (k) for (int t = valid[0]; t < 32; t++) tok[t] = (t * 3 + 2) % cfg.vocab;  // other padding tokens
        ForwardArgs a = {.step = 1, .valid = valid, .labels = labels};
        model_zero_grad(&m);
        loss[k] = model_forward(&m, tok, 2, 32, &a);
        logits[k] = xmalloc((size_t)2 * per * V * sizeof(float));
        model_logits(&m, logits[k]);
        model_backward(&m, m.act.n_labels, NULL);
        grads[k] = xmalloc(m.spec.n_params * sizeof(float));
        memcpy(grads[k], m.w.grads, m.spec.n_params * sizeof(float));
    }
    int real = head == HEAD_CLASSIFIER ? 2 * V : valid[0] * V;  // sequence 0's real rows, then all of sequence 1
    EXPECT(loss[0] == loss[1], "loss %.9g against %.9g", loss[0], loss[1]);
    EXPECT(!memcmp(logits[0], logits[1], (size_t)real * sizeof(float)), "real positions' logits differ");
    if (head == HEAD_LM)
        EXPECT(!memcmp(logits[0] + 32 * V, logits[1] + 32 * V, (size_t)32 * V * sizeof(float)), "the other sequence differs");
    EXPECT(!memcmp(grads[0], grads[1], m.spec.n_params * sizeof(float)), "gradients differ");
    // and the padding is not a no-op: the same tokens without it give another loss
    ForwardArgs all = {.step = 1, .labels = labels};
    EXPECT(model_forward(&m, tok, 2, 32, &all) != loss[1], "padding made no difference: the test sees nothing");
    for (int k = 0; k < 2; k++) {
        xfree(logits[k]);
        xfree(grads[k]);
    }
    model_free(&m);
}

void test_padding_invisible_classifier(void) { check_padding_invisible(HEAD_CLASSIFIER, POOL_MEAN); }
void test_padding_invisible_classifier_ends(void) { check_padding_invisible(HEAD_CLASSIFIER, POOL_ENDS); }
void test_padding_invisible_masked_lm(void) { check_padding_invisible(HEAD_LM, POOL_MEAN); }

void test_mlm_mask_draws(void) {
    enum { N = 200000, V = 50, MASK = 49 };
    int *tok = xmalloc(N * sizeof(int)), *orig = xmalloc(N * sizeof(int)), *lab = xmalloc(N * sizeof(int));
    for (int i = 0; i < N; i++) orig[i] = tok[i] = i % 40;
    int valid = N - 1000;
    mlm_mask(tok, lab, N, valid, 0.15f, MASK, V, 99);
    long chosen = 0, masked = 0, same = 0, pad_chosen = 0;
    for (int i = 0; i < N; i++) {
        if (i >= valid) { pad_chosen += lab[i] >= 0 || tok[i] != orig[i]; continue; }
        if (lab[i] < 0) { EXPECT(tok[i] == orig[i], "unchosen position %d changed", i); continue; }
        chosen++;
        EXPECT(lab[i] == orig[i], "label %d is not the token", i);
        masked += tok[i] == MASK;
        same += tok[i] == orig[i];
    }
    double share = (double)chosen / valid;
    printf("    chosen %.4f, of them masked %.4f, kept %.4f\n", share, (double)masked / chosen, (double)same / chosen);
    EXPECT(fabs(share - 0.15) < 0.005, "chosen share %.4f", share);
    EXPECT(fabs((double)masked / chosen - 0.8) < 0.01, "masked share %.4f", (double)masked / chosen);
    // kept: the 10% left alone plus the random draws that hit the token itself (1 in 50)
    EXPECT(fabs((double)same / chosen - 0.102) < 0.01, "kept share %.4f", (double)same / chosen);
    EXPECT(pad_chosen == 0, "%ld padding positions chosen", pad_chosen);
    // the same stream masks the same way; rate 0 labels every real position, masks none
    int *again = xmalloc(N * sizeof(int)), *lab2 = xmalloc(N * sizeof(int));
    memcpy(again, orig, N * sizeof(int));
    mlm_mask(again, lab2, N, valid, 0.15f, MASK, V, 99);
    EXPECT(!memcmp(again, tok, N * sizeof(int)) && !memcmp(lab2, lab, N * sizeof(int)), "not repeatable");
    memcpy(again, orig, N * sizeof(int));
    mlm_mask(again, lab2, N, valid, 0.0f, MASK, V, 99);
    int ok = !memcmp(again, orig, N * sizeof(int));
    for (int i = 0; i < N; i++) ok &= lab2[i] == (i < valid ? orig[i] : -1);
    EXPECT(ok, "rate 0 must keep every token and label every real one");
    xfree(tok); xfree(orig); xfree(lab); xfree(again); xfree(lab2);
}

// ListOps batches: lengths and classes per sequence, padded to the longest as the chunks need.
void test_listops_batches(void) {
    char dir[] = "/tmp/reformer-lobatch-XXXXXX", path[600], err[512] = "";
    if (!mkdtemp(dir)) abort();
    const char *files[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
        write_text_file(path, "Source\tTarget\n( ( [MAX 2 ) 9 ] )\t9\n( ( ( [SM 1 ) 2 ) ( ( [MIN 4 ) 3 ] ) ] )\t6\n");
    }
    Config c;
    config_default(&c);
    c.model = encoder(HEAD_CLASSIFIER, POOL_FIRST);
    c.model.classes = 10;
    c.model.vocab = 16;
    c.data.kind = DATA_LISTOPS;
    snprintf(c.data.path, sizeof(c.data.path), "%s", dir);
    c.data.seq_len = 32;
    Dataset d;
    EXPECT(dataset_open(&d, &c.data, 16, 1, err, sizeof(err)) == 0, "%s", err);
    Batch b;
    batch_init(&b, 4, &c);
    Rng r;
    rng_seed(&r, 3);
    EXPECT(dataset_train_batch(&d, b.tok, batch_meta(&b, 0, &c), 4, 0, 4, 32, &r, err, sizeof(err)) == 0, "%s", err);
    batch_fit(&b, 4, &c);
    int longest = 0;
    for (int i = 0; i < 4; i++) {
        EXPECT((b.valid[i] == 4 && b.labels[i] == 9) || (b.valid[i] == 8 && b.labels[i] == 6), "sequence %d: %d tokens, class %d",
               i, b.valid[i], b.labels[i]);
        longest = imax(longest, b.valid[i]);
        for (int t = b.valid[i]; t < b.T; t++) EXPECT(b.tok[i * b.T + t] == 0, "padding of %d is not 0", i);
        EXPECT(b.tok[i * b.T] == (b.valid[i] == 4 ? 12 : 14), "sequence %d starts with %d", i, b.tok[i * b.T]);
    }
    EXPECT(b.T == 8, "a batch whose longest is %d runs at %d", longest, b.T);
    ForwardArgs a = {0};
    batch_args(&b, &c, &a);
    EXPECT(a.valid == b.valid && a.labels == b.labels, "a classifier's batch gives lengths and classes");
    EXPECT(dataset_eval_windows(&d, SPLIT_TEST, 32) == 2, "two test sequences");
    batch_free(&b);
    dataset_close(&d);
    run_cmd(NULL, 0, "rm -rf %s", dir);
}

// A sequence scores the same in a batch (run one sequence per thread) as alone (kernels split
// over the threads), padding included: evaluation does not depend on train.batch.
void test_batch_equals_alone(void) {
    ReformerConfig cfg = encoder(HEAD_CLASSIFIER, POOL_FIRST);
    Model m, one;
    model_init(&m, &cfg, 4, 32, 7);
    model_init(&one, &cfg, 1, 32, 7);
    int tok[128], valid[4] = {27, 30, 32, 25}, labels[4] = {1, 2, 3, 4};
    for (int i = 0; i < 128; i++) tok[i] = (i * 5 + 1) % cfg.vocab;
    double batch = model_forward(&m, tok, 4, 32, &(ForwardArgs){.step = 2, .valid = valid, .labels = labels}) * 4;
    double alone = 0.0;
    for (int b = 0; b < 4; b++)
        alone += model_forward(&one, tok + 32 * b, 1, 32, &(ForwardArgs){.step = 2, .valid = valid + b, .labels = labels + b});
    printf("    batch %.9f, alone %.9f\n", batch, alone);
    EXPECT(fabs(batch - alone) < 1e-5 * fabs(alone), "batch %.9f against alone %.9f", batch, alone);
    model_free(&m);
    model_free(&one);
}
