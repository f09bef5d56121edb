// test_toolchain.c: the compiler and flags the project is built with. gcc 12.2 at -O3 with
// AVX-512 (-march=native on an AVX-512 CPU, or -march=x86-64-v4) miscompiles this loop shape,
// a vectorised sum over a stack array from a variable start: it loads with vmovapd from a
// slot it misaligned when realigning the stack to 64 bytes, and the program dies with SIGSEGV.
// The Makefile's ARCH avoids it with -Wa,-muse-unaligned-vector-move (the assembler emits
// unaligned moves, so no misaligned aligned load is left; -mprefer-vector-width=256 also
// avoided it, frames then realign to 32 bytes); a build with other flags that reintroduces it
// fails here, where it is named, instead of somewhere in a kernel.
#include <math.h>

#include "test.h"

__attribute__((noinline)) static void fill(double *u, double *r) {
    for (int i = 0; i < 17; i++) {
        u[i] = i * 0.1;
        r[i] = i * 0.2;
    }
}

void test_toolchain_vectorised_stack_loops(void) {
    double ref[17], total = 0;
    for (int t = 1; t <= 3; t++) {
        double decay = 1 - pow(t, -0.8), u[17];
        fill(u, ref);
        for (int part = 0; part < 2; part++) {
            int a = part ? 12 : 0, n = part ? 5 : 12;
            double uu = 0, ww = 0;
            for (int i = a; i < a + n; i++) {
                uu += u[i] * u[i];
                ww += ref[i] * ref[i];
            }
            double clip = fmax(1.0, sqrt(uu / n)), scale = fmax(sqrt(ww / n), 1e-3);
            for (int i = a; i < a + n; i++) ref[i] -= 0.05 * scale * u[i] / clip * decay;
        }
        total += ref[3];
    }
    // the same loops in long double, which the vectoriser leaves alone
    long double want = 0, r2[17];
    for (int t = 1; t <= 3; t++) {
        long double decay = 1 - powl(t, -0.8L), u[17];
        for (int i = 0; i < 17; i++) {
            u[i] = i * 0.1L;
            r2[i] = i * 0.2L;
        }
        for (int part = 0; part < 2; part++) {
            int a = part ? 12 : 0, n = part ? 5 : 12;
            long double uu = 0, ww = 0;
            for (int i = a; i < a + n; i++) {
                uu += u[i] * u[i];
                ww += r2[i] * r2[i];
            }
            long double clip = fmaxl(1.0L, sqrtl(uu / n)), scale = fmaxl(sqrtl(ww / n), 1e-3L);
            for (int i = a; i < a + n; i++) r2[i] -= 0.05L * scale * u[i] / clip * decay;
        }
        want += r2[3];
    }
    EXPECT(fabs(total - (double)want) < 1e-9, "vectorised loop gives %.12f, want %.12f", total, (double)want);
}
