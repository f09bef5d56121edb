// plot.h: training curves as SVG (cmd/plot.c).
#ifndef REFORMER_PLOT_H
#define REFORMER_PLOT_H

#include <stddef.h>

enum { PLOT_STEP = 0, PLOT_TOKENS = 1, PLOT_TIME = 2 };

// Draws runs[0..n) (run directories or metrics .jsonl files, each as PATH or LABEL=PATH) against x_axis into the SVG
// file out (written through a temporary and renamed). Returns 0 or -1 with err.
int plot_runs(const char *const *runs, int n, int x_axis, const char *out, char *err, size_t cap);

#endif
