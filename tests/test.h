// test.h: a small test harness. Each test runs in its own process (tests/main.c),
// so a crash or an abort fails that test alone; EXPECT records a failure and goes on.
#ifndef REFORMER_TEST_H
#define REFORMER_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/plan.h"

extern int test_failures;

#define EXPECT(cond, ...)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            test_failures++;                                                \
            fprintf(stderr, "    %s:%d: expected %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
        }                                                                   \
    } while (0)

// Random fill: normal(0, std) from a seeded generator.
void fill_normal(float *x, size_t n, float std, uint64_t seed);
// Relative distance max|a - b| / max|b| (the fixture measure of the oracle tests).
double max_rel_diff(const float *a, const float *b, size_t n);
// Sum of w[i] * x[i] in double: a random linear loss that exercises every output.
double dot_loss(const float *w, const float *x, size_t n);

// Directional gradient check: loss(ctx) is recomputed at x + eps*d and x - eps*d
// for a random direction d scaled to x's size, and the central difference is
// compared with g . d. Step sizes 1e-1 .. 1e-3 (of x's rms size) are tried, each alone and,
// where a step halves the one before, Richardson-extrapolated, and the best agreement is
// returned as a relative error; *analytic receives g . d so callers
// can check the derivative is not trivially zero.
typedef double (*LossFn)(void *ctx);
double gradcheck(LossFn loss, void *ctx, float *x, const float *g, size_t n, uint64_t seed,
                 double *analytic);

// A tiny config that still has several chunks per sequence for every attention kind: vocabulary
// 11, d_model 12, two heads of 6, chunks of 8, 32 positions, weights of std 0.3 (attention far from
// uniform). kind: ATTN_LSH, ATTN_LOCAL or ATTN_FULL for every layer, or < 0 for the paper's mixed
// enwik8 pattern.
ReformerConfig test_tiny_config(int kind, int causal, int layers);

// Writes text to path (aborts the test process if it cannot: the test itself is broken).
void write_text_file(const char *path, const char *text);

// The binary under test (REFORMER_BIN, else ./reformer).
const char *reformer_bin(void);
// Runs a shell command, captures stdout and stderr together into out, returns the exit code.
int run_cmd(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
