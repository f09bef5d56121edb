// test_fastmath.c: the vectorisable exp and erf against libm (their _ref twins).
#include <math.h>

#include "../core/fastmath.h"
#include "test.h"

void test_exp_approx_accuracy(void) {
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.00731f) {
        double ref = exp((double)x), got = exp_approx(x);
        worst = fmax(worst, fabs(got - ref) / ref);
    }
    printf("    exp_approx worst relative error on [-87, 88]: %.2e\n", worst);
    EXPECT(worst < 4e-7, "relative error %.2e", worst);
    EXPECT(exp_approx(-1e9f) == 0.0f && exp_approx(-100.0f) == 0.0f, "underflow must give 0");
    EXPECT(exp_approx(0.0f) == 1.0f, "exp(0) = %.9g", exp_approx(0.0f));
}

void test_erf_approx_accuracy(void) {
    double worst = 0;
    for (float x = -8.0f; x <= 8.0f; x += 0.000917f) worst = fmax(worst, fabs(erf_approx(x) - erf((double)x)));
    printf("    erf_approx worst absolute error on [-8, 8]: %.2e\n", worst);
    EXPECT(worst < 5e-7, "absolute error %.2e", worst);
    EXPECT(erf_approx(0.0f) == 0.0f, "erf(0) = %g", erf_approx(0.0f));
}
