// copy.c: the duplication task generator.
#include "copy.h"

#include <stddef.h>

void copy_batch(int *tokens, int B, int T, int vocab, Rng *rng) {
    int half = T / 2;
    for (int b = 0; b < B; b++) {
        int *t = tokens + (size_t)b * T;
        t[0] = 0;
        for (int i = 1; i < half; i++) t[i] = 1 + (int)rng_below(rng, (uint32_t)(vocab - 1));
        for (int i = 0; i < half; i++) t[half + i] = t[i];
        if (T % 2) t[T - 1] = 0;
    }
}

int copy_scored_from(int T) { return T / 2 + 1; }
