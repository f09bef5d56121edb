// rng.h: our own random numbers, so runs are reproducible across machines and
// the state can be saved in a checkpoint.
//
// Two kinds: a sequential generator (xoshiro256**) for initialisation and data,
// and a counter-based hash for everything the backward pass must replay
// (dropout masks, LSH rotations): the value at (stream, index) is a pure
// function, so a recomputed layer sees exactly the masks of its forward pass,
// in any order and on any thread.
#ifndef REFORMER_RNG_H
#define REFORMER_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *rng, uint64_t seed);
uint64_t rng_next(Rng *rng);
float rng_uniform(Rng *rng);              // [0, 1)
float rng_normal(Rng *rng);               // standard normal
uint32_t rng_below(Rng *rng, uint32_t n); // uniform in [0, n)

// splitmix64 finaliser: a bijective mix of 64 bits.
static inline uint64_t hash_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// A stream id from up to four integers (seed, step, layer, site).
static inline uint64_t hash_stream(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    return hash_mix(hash_mix(hash_mix(hash_mix(a) ^ b) ^ c) ^ d);
}

// Uniform in [0, 1) at position `index` of `stream`, 24 random bits.
static inline float hash_uniform(uint64_t stream, uint64_t index) {
    return (float)(hash_mix(stream ^ hash_mix(index)) >> 40) * (1.0f / 16777216.0f);
}

float hash_normal(uint64_t stream, uint64_t index);

// Dropout factor at (stream, index): 0 with probability p, else 1/(1-p).
// The same call in the backward pass replays the forward mask exactly.
static inline float dropout_factor(uint64_t stream, uint64_t index, float p) {
    return hash_uniform(stream, index) < p ? 0.0f : 1.0f / (1.0f - p);
}

#endif
