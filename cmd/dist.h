// dist.h: the processes of one data-parallel training job.
//
// Built with MPI (`make MPI=1`) and started by mpirun, a job is the ranks of
// MPI_COMM_WORLD. Otherwise - a build without MPI, or an MPI build started without mpirun -
// it is one process, rank 0 of 1, and every collective below is a copy or nothing.
// Collectives block, and every rank calls them in the same order.
//
// A block of n floats split over the ranks is described by at (size + 1 entries): rank r
// owns [at[r], at[r + 1]).
#ifndef REFORMER_DIST_H
#define REFORMER_DIST_H

#include <stddef.h>

// Starts MPI when launched by mpirun (in an MPI build); call first in main.
void dist_init(int *argc, char ***argv);
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);
// Ranks of this job on this machine (mpirun's local size; 1 without mpirun).
int dist_local_size(void);

// x (n) = the sum over ranks, in place: every rank gets the same bits, the values added in
// rank order whatever the MPI library's algorithm.
void dist_sum(double *x, int n);
// 1 when any rank's flag is nonzero.
int dist_any(int flag);
// x (n = at[size]) summed over ranks; afterwards this rank's slice holds the sum (the rest
// of x is left as it was). Each element is added in one place, so every later copy of a
// slice has the same bits. Doubles: gradients are summed in double (model_backward).
void dist_reduce_scatter(double *x, const size_t *at);
// Every rank's slice of x to every rank.
void dist_allgather(float *x, const size_t *at);
// Point to point (checkpoints gather optimizer slices on rank 0), in messages of
// DIST_PIECE floats: a long send may be taken piece by piece, one dist_recv per piece.
#define DIST_PIECE ((size_t)1 << 22)
void dist_send(const float *x, size_t n, int to);
void dist_recv(float *x, size_t n, int from);
// "PREFIX: rank R: MESSAGE" on one line, then the whole job ends with status 1 (MPI_Abort):
// for a failure on one rank that the others cannot know of. One process: the same line, exit 1.
void dist_fail(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#endif
