// fastmath.h: exp and erf written so that loops over them vectorise (glibc's expf
// and erff are scalar calls without -ffast-math, which we do not use). Each is
// checked against libm in tests/test_fastmath.c.
#ifndef REFORMER_FASTMATH_H
#define REFORMER_FASTMATH_H

// exp(x) within 3e-7 relative for x in [-87, 88]; exactly 0 below -87 (softmax
// weights that small are 0 in float anyway). Range reduction x = n ln2 + r, then a
// degree-6 polynomial for exp(r), |r| <= ln2 / 2.
static inline float exp_approx(float x) {
    union { float f; unsigned i; } scale;
    float y = x > 88.0f ? 88.0f : x < -87.5f ? -87.5f : x;  // keep the exponent in range
    float t = y * 1.44269504f + 12582912.0f;  // round(x / ln2) in the low mantissa bits
    float n = t - 12582912.0f;
    float r = y - n * 0.693145752f;           // ln2 split in two parts for exactness
    r = r - n * 1.42860677e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f +
              r * (0.00833333377f + r * 0.00138888892f)))));
    scale.i = (unsigned)((int)n + 127) << 23;
    return x < -87.0f ? 0.0f : p * scale.f;
}

// erf(x) within 5e-7 absolute: Abramowitz and Stegun 7.1.26 (1.5e-7) in float.
static inline float erf_approx(float x) {
    float a = x < 0.0f ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float y = 1.0f - t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f +
              t * (-1.453152027f + t * 1.061405429f)))) * exp_approx(-a * a);
    return x < 0.0f ? -y : y;
}

#endif
