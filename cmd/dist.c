// dist.c: Open MPI underneath when built with REFORMER_MPI; one process otherwise.
#include "dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/common.h"

#ifdef REFORMER_MPI
#include <mpi.h>
#endif

static int rank_, size_ = 1;
#ifdef REFORMER_MPI
static int started;
#endif

void dist_init(int *argc, char ***argv) {
#ifdef REFORMER_MPI
    // only under mpirun: a lone process must not pay for (or depend on) MPI's start-up
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_RANK")) return;
    int provided;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    // a failed collective ends the job with MPI's message rather than returning quietly
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    started = 1;
#else
    (void)argc;
    (void)argv;
    // N copies of a build without MPI would each train alone, racing for one output directory
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1) {
        fprintf(stderr, "reformer: started by mpirun as one of %s processes, but this build has no MPI: "
                        "build it with make MPI=1\n", n);
        exit(2);
    }
#endif
}

void dist_finalize(void) {
#ifdef REFORMER_MPI
    if (started) MPI_Finalize();
    started = 0;
#endif
}

int dist_rank(void) { return rank_; }
int dist_size(void) { return size_; }

int dist_local_size(void) {
    const char *s = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    int n = s && size_ > 1 ? atoi(s) : 1;
    return n > 0 ? n : 1;
}

#ifdef REFORMER_MPI
// MPI counts are ints: a slice must fit one
static int count_of(size_t n) {
    CHECK(n <= 0x7fffffff, "a slice of %zu floats is more than one MPI message holds", n);
    return (int)n;
}
#endif

void dist_sum(double *x, int n) {
#ifdef REFORMER_MPI
    if (size_ == 1) return;
    double *all = xmalloc((size_t)n * size_ * sizeof(double));
    MPI_Allgather(x, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD);
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int r = 0; r < size_; r++) s += all[(size_t)r * n + i];
        x[i] = s;
    }
    xfree(all);
#else
    (void)x;
    (void)n;
#endif
}

int dist_any(int flag) {
    double f = flag != 0;
    dist_sum(&f, 1);
    return f > 0;
}

#ifdef REFORMER_MPI
// Doubles per reduce-scatter round, all ranks' parts together: MPI's temporary buffers are
// of this size, not of the whole gradient (which for P12 is 1.2 GB of doubles).
// REFORMER_DIST_BUCKET (doubles) sets another size: the tests use a small one to run many rounds.
static size_t bucket_doubles(void) {
    const char *e = getenv("REFORMER_DIST_BUCKET");
    long long n = e ? atoll(e) : 0;
    return n > 0 ? (size_t)n : (size_t)8 << 20;
}
#endif

void dist_reduce_scatter(double *x, const size_t *at) {
#ifdef REFORMER_MPI
    if (size_ == 1) return;
    size_t n = at[size_], rounds = (n + bucket_doubles() - 1) / bucket_doubles(), most = 0;
    for (int r = 0; r < size_; r++) most = at[r + 1] - at[r] > most ? at[r + 1] - at[r] : most;
    // round k takes part k of every rank's slice: the parts side by side in stage, the sum
    // of this rank's part back into x
    double *stage = xmalloc((n / rounds + (size_t)size_) * sizeof(double));
    double *mine = xmalloc((most / rounds + 1) * sizeof(double));
    int *counts = xmalloc((size_t)size_ * sizeof(int));
    for (size_t k = 0; k < rounds; k++) {
        size_t used = 0;
        for (int r = 0; r < size_; r++) {
            size_t len = at[r + 1] - at[r], lo = at[r] + len * k / rounds, hi = at[r] + len * (k + 1) / rounds;
            memcpy(stage + used, x + lo, (hi - lo) * sizeof(double));
            counts[r] = count_of(hi - lo);
            used += hi - lo;
        }
        MPI_Reduce_scatter(stage, mine, counts, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        size_t len = at[rank_ + 1] - at[rank_];
        memcpy(x + at[rank_] + len * k / rounds, mine, (size_t)counts[rank_] * sizeof(double));
    }
    xfree(stage);
    xfree(mine);
    xfree(counts);
#else
    (void)x;
    (void)at;
#endif
}

void dist_allgather(float *x, const size_t *at) {
#ifdef REFORMER_MPI
    if (size_ == 1) return;
    int *counts = xmalloc((size_t)size_ * sizeof(int)), *displs = xmalloc((size_t)size_ * sizeof(int));
    for (int r = 0; r < size_; r++) {
        counts[r] = count_of(at[r + 1] - at[r]);
        displs[r] = count_of(at[r]);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
    xfree(counts);
    xfree(displs);
#else
    (void)x;
    (void)at;
#endif
}

void dist_send(const float *x, size_t n, int to) {
#ifdef REFORMER_MPI
    for (size_t done = 0; done < n;) {
        size_t part = n - done < DIST_PIECE ? n - done : DIST_PIECE;
        MPI_Send(x + done, (int)part, MPI_FLOAT, to, 0, MPI_COMM_WORLD);
        done += part;
    }
#else
    (void)x;
    (void)n;
    (void)to;
#endif
}

void dist_recv(float *x, size_t n, int from) {
#ifdef REFORMER_MPI
    for (size_t done = 0; done < n;) {
        size_t part = n - done < DIST_PIECE ? n - done : DIST_PIECE;
        MPI_Recv(x + done, (int)part, MPI_FLOAT, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        done += part;
    }
#else
    (void)x;
    (void)n;
    (void)from;
#endif
}

void dist_fail(const char *prefix, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    set_error_v(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (size_ > 1) fprintf(stderr, "%s: rank %d: %s\n", prefix, rank_, msg);
    else fprintf(stderr, "%s: %s\n", prefix, msg);
    fflush(stderr);
#ifdef REFORMER_MPI
    if (started && size_ > 1) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    exit(1);
}
