// common.h: invariants, allocation and the shape legend shared by every core file.
//
// Shape legend used in comments on every buffer:
//   B batch, T sequence length, C d_model, NH heads, HS head size, F d_ff,
//   NR hash rounds, CH chunk length, NL layers, V vocabulary.
// Activations are row-major (B, T, C); per-head vectors stay in (B, T, NH*HS) and
// are addressed with a stride rather than transposed.
#ifndef REFORMER_COMMON_H
#define REFORMER_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <omp.h>

// CHECK is for broken invariants inside core: it names file:line and aborts.
// Bad user input never reaches a CHECK; the edges (config, readers) return errors.
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            abort();                                                          \
        }                                                                     \
    } while (0)

// Every allocation in core goes through these, so tests can count bytes and
// inject failures. xmalloc aborts on failure; try_malloc returns NULL.
// The rule in cmd/ and data/: a size that comes from input (a file's length, a header
// field, a prompt) is allocated with malloc and checked, its failure one error line ("out of
// memory"); a size the program chose (buffers of a model whose bytes were checked against the
// machine's memory before it was built) uses xmalloc.
void *xmalloc(size_t bytes);
void *xcalloc(size_t count, size_t size);
void *try_malloc(size_t bytes);
void xfree(void *p);
size_t mem_live_bytes(void);  // bytes currently held through xmalloc/xcalloc
size_t mem_peak_bytes(void);  // high-water mark of mem_live_bytes
void mem_reset_peak(void);
void mem_fail_after(long n);  // make the n-th next allocation fail (-1: never)
void mem_poison(int on);      // fill new xmalloc blocks with NaN bytes: a read before a write shows
// With mem_poison on, n floats at p become NaN: scratch handed from one user to the next (the
// attention, the feed-forward and the head share one area), so a read of what this user never
// wrote shows as it would in a new block. Without it, nothing.
void mem_poison_floats(float *p, size_t n);

// Threads: one policy for the whole program. BLAS runs single-threaded and our
// OpenMP regions split the work, so a threaded BLAS never nests inside OpenMP, and a region
// opened inside another runs on one thread (omp_set_max_active_levels(1)).
void threads_set(int n);
int threads_get(void);

// Element-wise passes over fewer values than this stay on one thread: forking costs more.
#define PARALLEL_MIN 65536

// p (n floats) = 0, split over the threads when n is large and no region is open: the
// per-step buffers run to 64 MB at 65,536 tokens, too much for one thread of sixteen.
// Seconds on the monotonic clock: the one clock of timings, progress and profiles.
double now_seconds(void);

void zero_floats(float *p, size_t n);

static inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

// The edge tier of errors: formats one line into err (cap bytes) for the caller to print
// and returns -1, so readers end with `return set_error(err, cap, "%s: ...", path)`.
// The message is made one line: control characters (a newline in a key or a file name)
// become '?'.
int set_error(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int set_error_v(char *err, size_t cap, const char *fmt, va_list ap);
void one_line(char *s);

// OpenBLAS 0.3.21 does not know every new CPU and falls back to a generic kernel that runs
// sgemm 5-7x slower (seen: 33 instead of 219 GFLOP/s on an Intel Xeon with AVX-512). blas_better_core names
// the kernel this CPU can run when that happened (NULL otherwise).
const char *blas_better_core(void);
// Settings the libraries read only when they load; called first in main, it re-executes the
// program once with them in its environment: OPENBLAS_CORETYPE = blas_better_core() (unless
// the user set it) and a short OpenMP spin before idle threads sleep (GOMP_SPINCOUNT=1000,
// unless GOMP_SPINCOUNT or OMP_WAIT_POLICY is set), so that a process sharing its cores with
// another busy one does not collapse.
void runtime_choose(char **argv);

#endif
