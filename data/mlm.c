// mlm.c: three draws per position from one counter-based stream: chosen, how it is
// replaced, and the random token.
#include "mlm.h"

#include "../core/rng.h"

void mlm_mask(int *tokens, int *labels, int n, int valid, float rate, int mask_id, int vocab, uint64_t stream) {
    for (int t = 0; t < n; t++) {
        int real = t < valid;
        if (rate <= 0.0f || !real) {
            labels[t] = real && rate <= 0.0f ? tokens[t] : -1;
            continue;
        }
        uint64_t at = 3 * (uint64_t)t;
        if (hash_uniform(stream, at) >= rate) {
            labels[t] = -1;
            continue;
        }
        labels[t] = tokens[t];
        float how = hash_uniform(stream, at + 1);
        if (how < 0.8f) tokens[t] = mask_id;
        else if (how < 0.9f) tokens[t] = (int)(hash_uniform(stream, at + 2) * (float)vocab) % vocab;
    }
}
