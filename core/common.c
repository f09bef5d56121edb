// common.c: counted allocation (for the flat-in-depth memory test and fault
// injection) and the single threading switch.
#include "common.h"

#include <cblas.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// A header in front of each block records its size so xfree can count it.
// 64 bytes keeps the caller's pointer aligned for AVX-512 loads.
#define HEADER 64

static size_t live_bytes, peak_bytes;
static long fail_countdown = -1;

void *try_malloc(size_t bytes) {
    if (fail_countdown == 0) {
        fail_countdown = -1;
        return NULL;
    }
    if (fail_countdown > 0) fail_countdown--;
    void *raw = NULL;
    if (posix_memalign(&raw, 64, bytes + HEADER) != 0) return NULL;
    *(size_t *)raw = bytes;
    #pragma omp atomic
    live_bytes += bytes;
    #pragma omp critical(mem_peak)
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
    return (char *)raw + HEADER;
}

static int poison;

void *xmalloc(size_t bytes) {
    void *p = try_malloc(bytes);
    CHECK(p != NULL, "out of memory allocating %zu bytes", bytes);
    if (poison) memset(p, 0xff, bytes);  // every float a NaN
    return p;
}

void mem_poison(int on) { poison = on; }

void mem_poison_floats(float *p, size_t n) {
    if (poison) memset(p, 0xff, n * sizeof(float));
}

void *xcalloc(size_t count, size_t size) {
    CHECK(size == 0 || count <= SIZE_MAX / size, "calloc overflow");
    void *p = xmalloc(count * size);
    memset(p, 0, count * size);
    return p;
}

void xfree(void *p) {
    if (!p) return;
    char *raw = (char *)p - HEADER;
    #pragma omp atomic
    live_bytes -= *(size_t *)raw;
    free(raw);
}

size_t mem_live_bytes(void) { return live_bytes; }
size_t mem_peak_bytes(void) { return peak_bytes; }
void mem_reset_peak(void) { peak_bytes = live_bytes; }
void mem_fail_after(long n) { fail_countdown = n; }

static int n_threads = 1;

void threads_set(int n) {
    n_threads = n < 1 ? 1 : n;
    omp_set_num_threads(n_threads);
    // one level of threads: a region opened inside another (core/model.c runs a batch's
    // sequences on separate threads, each calling the kernels) runs on its caller's thread
    omp_set_max_active_levels(1);
    openblas_set_num_threads(1);
}

int threads_get(void) { return n_threads; }

void one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

int set_error_v(char *err, size_t cap, const char *fmt, va_list ap) {
    vsnprintf(err, cap, fmt, ap);
    if (cap) one_line(err);  // names from files and flags may hold newlines or escapes
    return -1;
}

int set_error(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error_v(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

// Names OpenBLAS 0.3.21 gives its generic x86 kernels when it does not recognise a CPU.
static int blas_core_is_generic(const char *core) {
    const char *generic[] = {"Prescott", "Core2", "Nehalem", "Katmai", "Barcelona", NULL};
    for (int i = 0; generic[i]; i++)
        if (!strcmp(core, generic[i])) return 1;
    return 0;
}

const char *blas_better_core(void) {
    if (!blas_core_is_generic(openblas_get_corename())) return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

void runtime_choose(char **argv) {
    const char *better = getenv("OPENBLAS_CORETYPE") ? NULL : blas_better_core();
    // libgomp's idle threads spin 300,000 times before they sleep. Two busy processes on the
    // same cores then spend their slices spinning for each other's descheduled threads: two
    // B6 trainings started together on 2 cores kept 32% of their solo tokens/s each, and
    // 62% with 1,000 spins, which costs a process alone nothing measurable (BENCH.md).
    int spin = !getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY");
    if (!better && !spin) return;
    // both are read when the libraries load, so the choice needs a fresh start
    if (better) setenv("OPENBLAS_CORETYPE", better, 1);
    if (spin) setenv("GOMP_SPINCOUNT", "1000", 1);
    execv("/proc/self/exe", argv);
    if (better) unsetenv("OPENBLAS_CORETYPE");  // exec failed: carry on as we are
    if (spin) unsetenv("GOMP_SPINCOUNT");
}

double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

void zero_floats(float *p, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PARALLEL_MIN && !omp_in_parallel())
    for (size_t i = 0; i < n; i++) p[i] = 0.0f;
}
