// test_decode.c: cached incremental decoding. Where the cached semantics equal a full
// forward pass (local and full attention under a causal mask) the logits of every step
// must equal the full recompute's; LSH decoding is checked against HuggingFace in test_hf.c.
#include <math.h>
#include <string.h>

#include "../core/common.h"
#include "../core/decode.h"
#include "../core/model.h"
#include "../core/rng.h"
#include "test.h"

static ReformerConfig decode_config(int kind0, int kind1) {
    ReformerConfig c = test_tiny_config(kind0, 1, 2);  // causal, two layers
    c.attn[1] = kind1;
    c.vocab = 13;
    c.local_chunk = 4;
    c.ffn_chunk = c.head_chunk = 0;  // the defaults
    return c;
}

static void check_against_recompute(int kind0, int kind1, const char *what) {
    ReformerConfig cfg = decode_config(kind0, kind1);
    int T = 32, V = cfg.vocab, prompt = 5;
    Model cached, full;
    model_init(&cached, &cfg, 1, T, 7);
    model_init(&full, &cfg, 1, T, 7);
    int seq[32];
    Rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < T; i++) seq[i] = (int)rng_below(&r, (uint32_t)V);
    Decoder d;
    decoder_init(&d, &cached, T, NULL);
    float logits[13], *ref = xmalloc((size_t)T * V * sizeof(float));
    double worst = 0.0;
    for (int cur = prompt; cur <= T; cur++) {
        if (cur == prompt) decoder_prefill(&d, seq, prompt, logits);
        else decoder_step(&d, seq[cur - 1], logits);
        // the full pass over the prefix, padded to a multiple of 4 (causal: padding unseen)
        int L = (cur + 3) / 4 * 4;
        int padded[32] = {0};
        memcpy(padded, seq, (size_t)cur * sizeof(int));
        model_forward(&full, padded, 1, L, &(ForwardArgs){0});
        model_logits(&full, ref);
        double diff = max_rel_diff(logits, ref + (size_t)(cur - 1) * V, (size_t)V);
        if (diff > worst) worst = diff;
    }
    EXPECT(worst < 2e-5, "%s: cached logits differ from the full recompute by %.2e", what, worst);
    decoder_free(&d);
    model_free(&cached);
    model_free(&full);
    xfree(ref);
}

void test_decode_local_and_full_equal_recompute(void) {
    check_against_recompute(ATTN_LOCAL, ATTN_LOCAL, "local");
    check_against_recompute(ATTN_FULL, ATTN_LOCAL, "full + local");
}

void test_decode_forward_len(void) {
    ReformerConfig c = decode_config(ATTN_LOCAL, ATTN_LSH);  // chunks 4 and 8
    EXPECT(decoder_forward_len(&c, 3) == 3 && decoder_forward_len(&c, 4) == 4 && decoder_forward_len(&c, 6) == 4 &&
               decoder_forward_len(&c, 8) == 8 && decoder_forward_len(&c, 13) == 8 && decoder_forward_len(&c, 16) == 16,
           "prefix lengths a forward pass accepts");
}
