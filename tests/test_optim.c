// test_optim.c: the optimizer against a hand computation, schedules, and the RNG.
#include <math.h>
#include <string.h>

#include "../core/optim.h"
#include "../core/common.h"
#include "../core/rng.h"
#include "test.h"

void test_adam_matches_formula(void) {
    OptimConfig c;
    optim_config_default(&c);
    c.clip = 0;
    c.warmup = 0;
    c.schedule = SCHEDULE_CONSTANT;
    c.lr = 0.1f;
    c.weight_decay = 0.01f;
    OptimState s;
    optim_init_adam(&s, 3);
    float p[3] = {1, -2, 0.5f}, g[3] = {0.3f, -0.1f, 2.0f};
    double m[3] = {0}, v[3] = {0}, ref[3] = {1, -2, 0.5};
    for (int t = 1; t <= 3; t++) {
        optim_update(&c, &s, p, g, 3);
        for (int i = 0; i < 3; i++) {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.98 * v[i] + 0.02 * g[i] * g[i];
            double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.98, t));
            ref[i] -= 0.1 * (mh / (sqrt(vh) + 1e-9) + 0.01 * ref[i]);
        }
    }
    for (int i = 0; i < 3; i++) EXPECT(fabs(p[i] - ref[i]) < 1e-5, "param %d: %f vs %f", i, p[i], ref[i]);
    optim_free(&s);
}

void test_adam_clip_and_schedules(void) {
    OptimConfig c;
    optim_config_default(&c);
    float g[2] = {3, 4};
    EXPECT(fabs(grad_norm(g, 2) - 5.0) < 1e-9, "norm");
    c.lr = 1.0f;
    c.warmup = 10;
    c.schedule = SCHEDULE_RSQRT;
    EXPECT(fabsf(optim_lr(&c, 5) - 0.5f) < 1e-6, "warm-up half way");
    EXPECT(fabsf(optim_lr(&c, 10) - 1.0f) < 1e-6, "peak at warm-up end");
    EXPECT(fabsf(optim_lr(&c, 40) - 0.5f) < 1e-6, "rsqrt: 4x steps, half rate");
    c.schedule = SCHEDULE_COSINE;
    c.total = 110;
    EXPECT(fabsf(optim_lr(&c, 60) - 0.5f) < 1e-6, "cosine midpoint");
    EXPECT(fabsf(optim_lr(&c, 110)) < 1e-6, "cosine end");
    // clipping: a huge gradient moves the parameter as much as a clipped one
    OptimState s1, s2;
    optim_init_adam(&s1, 2);
    optim_init_adam(&s2, 2);
    c.clip = 1.0f;
    c.schedule = SCHEDULE_CONSTANT;
    c.warmup = 0;
    float p1[2] = {0, 0}, p2[2] = {0, 0}, big[2] = {300, 400}, unit[2] = {0.6f, 0.8f};
    optim_update(&c, &s1, p1, big, 2);
    optim_update(&c, &s2, p2, unit, 2);
    EXPECT(p1[0] == p2[0] && p1[1] == p2[1], "clipped update differs");
}

void test_rng_reproducible_and_saved(void) {
    Rng a, b;
    rng_seed(&a, 5);
    for (int i = 0; i < 10; i++) rng_next(&a);
    b = a;  // the state is plain data: saving it resumes the sequence
    for (int i = 0; i < 100; i++) EXPECT(rng_next(&a) == rng_next(&b), "diverged at %d", i);
    double mean = 0, var = 0;
    for (int i = 0; i < 100000; i++) {
        double x = rng_normal(&a);
        mean += x;
        var += x * x;
    }
    mean /= 100000;
    var = var / 100000 - mean * mean;
    EXPECT(fabs(mean) < 0.02 && fabs(var - 1) < 0.03, "normal: mean %f var %f", mean, var);
    int kept = 0;
    for (int i = 0; i < 100000; i++) kept += dropout_factor(9, i, 0.25f) > 0;
    EXPECT(abs(kept - 75000) < 1000, "dropout keeps %d of 100000 at p 0.25", kept);
}

static double mean_square(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i] * x[i];
    return s / n;
}

// Adafactor against a plain double transcription of Shazeer and Stern's algorithm 4 with
// trax's settings (decay 1 - t^-0.8, eps1 1e-30, eps2 1e-3, update clipping at RMS 1, step
// scaled by the parameter's RMS, no momentum) on a 3x4 matrix (factored) and a 5-vector.
void test_adafactor_matches_formula(void) {
    OptimConfig c;
    optim_config_default(&c);
    c.optimizer = OPT_ADAFACTOR;
    c.clip = 0;
    c.warmup = 0;
    c.schedule = SCHEDULE_CONSTANT;
    c.lr = 0.05f;
    size_t offsets[2] = {0, 12}, numels[2] = {12, 5};
    int ndims[2] = {2, 1}, shapes[2][3] = {{3, 4, 0}, {5, 0, 0}};
    OptimState s;
    optim_init_adafactor(&s, 17, 2, offsets, numels, ndims, (const int (*)[3])shapes);
    EXPECT(s.n_v == 3 + 4 + 5, "state of %zu floats, want rows + cols + vector = 12", s.n_v);
    float p[17], g[17];
    double ref[17], vr[3] = {0}, vc[4] = {0}, vv[5] = {0};
    for (int i = 0; i < 17; i++) ref[i] = p[i] = 0.1f * (i - 8) + 0.03f * (i % 3);
    for (int t = 1; t <= 3; t++) {
        for (int i = 0; i < 17; i++) g[i] = (float)(0.2 * sin(1.3 * i + t) + 0.05 * (i % 4 == t));
        optim_update(&c, &s, p, g, 17);
        double decay = 1 - pow(t, -0.8), u[17];
        // the matrix: row and column means of g^2 + eps1, v_hat = vr vc^T / mean(vr)
        for (int r = 0; r < 3; r++) {
            double m = 0;
            for (int k = 0; k < 4; k++) m += (double)g[r * 4 + k] * g[r * 4 + k] + 1e-30;
            vr[r] = decay * vr[r] + (1 - decay) * m / 4;
        }
        for (int k = 0; k < 4; k++) {
            double m = 0;
            for (int r = 0; r < 3; r++) m += (double)g[r * 4 + k] * g[r * 4 + k] + 1e-30;
            vc[k] = decay * vc[k] + (1 - decay) * m / 3;
        }
        double mean = (vr[0] + vr[1] + vr[2]) / 3;
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 4; k++) u[r * 4 + k] = g[r * 4 + k] / sqrt(vr[r] * vc[k] / mean);
        for (int i = 0; i < 5; i++) {
            vv[i] = decay * vv[i] + (1 - decay) * ((double)g[12 + i] * g[12 + i] + 1e-30);
            u[12 + i] = g[12 + i] / sqrt(vv[i]);
        }
        for (int tensor = 0; tensor < 2; tensor++) {
            int a = tensor ? 12 : 0, n = tensor ? 5 : 12;
            double clip = fmax(1.0, sqrt(mean_square(u + a, n))), scale = fmax(sqrt(mean_square(ref + a, n)), 1e-3);
            for (int i = a; i < a + n; i++) ref[i] -= 0.05 * scale * u[i] / clip;
        }
        for (int i = 0; i < 17; i++) ref[i] = (float)ref[i];  // the parameters are floats
    }
    double worst = 0;
    for (int i = 0; i < 17; i++) worst = fmax(worst, fabs(p[i] - ref[i]));
    EXPECT(worst < 1e-6, "Adafactor differs from the formula by %.2e", worst);
    optim_free(&s);
}
