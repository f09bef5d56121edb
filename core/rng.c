// rng.c: xoshiro256** (Blackman and Vigna) seeded through splitmix64.
#include "rng.h"

#include <math.h>

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rng_seed(Rng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) {
        seed = hash_mix(seed);
        rng->s[i] = seed;
    }
}

uint64_t rng_next(Rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float rng_uniform(Rng *rng) { return (float)(rng_next(rng) >> 40) * (1.0f / 16777216.0f); }

uint32_t rng_below(Rng *rng, uint32_t n) { return (uint32_t)(((rng_next(rng) >> 32) * n) >> 32); }

// Box-Muller without a cached spare, so the state is just s[4].
float rng_normal(Rng *rng) {
    double u1 = ((rng_next(rng) >> 11) + 1.0) * (1.0 / 9007199254740993.0);  // (0, 1]
    double u2 = (rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

float hash_normal(uint64_t stream, uint64_t index) {
    uint64_t a = hash_mix(stream ^ hash_mix(2 * index));
    uint64_t b = hash_mix(stream ^ hash_mix(2 * index + 1));
    double u1 = ((a >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (b >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
