// machine.h: what this process may use of the machine it runs on: its share of the cores
// (with the ranks mpirun started beside it) and whether a run's memory fits.
#ifndef REFORMER_MACHINE_H
#define REFORMER_MACHINE_H

#include <stddef.h>

#include "../core/plan.h"

// Online cores of this machine.
int cores_online(void);
// Runs with n threads, or when n is 0 this process's share of the machine: its online cores
// divided by the processes mpirun started on it, so ranks x threads never oversubscribe.
void threads_apply(int n);

// Whether a model of c for batches of B x T fits this machine's memory, with kept_layers
// layers keeping their activations (model_keep_layers) and opt_floats_per_param floats of
// optimizer state per parameter (Adam: 2; none: 0).
// Returns 0, or -1 with a line naming what it needs and what the machine has.
int machine_check_memory(const ReformerConfig *c, int B, int T, int kept_layers, double opt_floats_per_param,
                         char *err, size_t cap);
// The bytes machine_check_memory weighs: the model's buffers, the optimizer state and the kept
// layers' activations; n_params receives the parameter count.
double machine_run_bytes(const ReformerConfig *c, int B, int T, int kept_layers, double opt_floats_per_param,
                         size_t *n_params);
// Bytes of memory this machine has available now (MemAvailable; free pages without /proc).
double machine_available_memory(void);

#endif
