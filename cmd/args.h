// args.h: strict parsing of command-line values. Every failure prints one line
// naming the flag and exits 2; no value is silently clamped or defaulted.
#ifndef REFORMER_ARGS_H
#define REFORMER_ARGS_H

#include <stddef.h>

#include "../core/common.h"  // set_error

#define REFORMER_VERSION "0.1.0"

// Parses `text` as a whole integer in [lo, hi] for `flag`, or exits 2.
long long arg_int(const char *flag, const char *text, long long lo, long long hi);
// Parses `text` as a whole finite number in [lo, hi] for `flag`, or exits 2.
double arg_float(const char *flag, const char *text, double lo, double hi);
// Returns the index of `text` in the NULL-terminated `choices`, or exits 2.
int arg_choice(const char *flag, const char *text, const char *const *choices);
// The value after argv[*i] (advancing *i), or exits 2 if there is none.
const char *arg_value(int argc, char **argv, int *i);

// --help or -h.
int arg_is_help(const char *flag);
// --threads N: 1 to 1024, or 0 (this process's share of the cores) where allow_zero.
int arg_threads(const char *flag, const char *text, int allow_zero);
// Online cores of this machine.
int cores_online(void);
// Runs with n threads, or when n is 0 this process's share of the machine: its online cores
// divided by the processes mpirun started on it, so ranks x threads never oversubscribe.
void threads_apply(int n);

// Prints "reformer CMD: MESSAGE; usage: USAGE" (one line) to stderr, then exits 2.
void usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#endif
