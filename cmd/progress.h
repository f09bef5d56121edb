// progress.h: what a long run shows: one updating line on a terminal, plain lines
// otherwise (stderr), and one JSON object per log step in DIR/metrics.jsonl, flushed.
#ifndef REFORMER_PROGRESS_H
#define REFORMER_PROGRESS_H

#include <stdio.h>

#include "tensorboard.h"

typedef struct {
    int tty;
    long long total, first;   // steps in the run; step the session started at
    double t0;                // session start (monotonic seconds)
    FILE *metrics;            // NULL: none
    int dirty;                // a \r line is on screen
    double last_shown;        // progress_count: when the last line went out
    long long tokens_per_step;  // training: batch x sequence (the "tokens" of metrics)
    double elapsed_before;    // a resumed run: the training seconds its kept lines had reached
    EventWriter events;       // TensorBoard: the same scalars as metrics.jsonl
    int quiet;                // shows and writes nothing (data-parallel ranks other than 0)
} Progress;

// metrics_path may be NULL; else a TensorBoard event file is written beside it too. With
// resume_step >= 0 the file keeps only lines of steps <= resume_step, so a resumed run's log
// reads as one run (TensorBoard is told of the restart and drops later steps itself).
int progress_open(Progress *p, const char *metrics_path, long long total, long long first,
                  long long resume_step, char *err, size_t cap);
// Shows step/total, loss, bits, lr, tokens/s and ETA; `log_line` also writes a plain line
// (off a terminal) and a metrics object. valid_loss < 0: no validation this step.
void progress_step(Progress *p, long long step, double loss, double lr, double tokens_per_s,
                   int log_line, double valid_loss, double valid_acc);
// Work measured in tokens (evaluation, image sampling): "LABEL done/total tokens | loss |
// tok/s | ETA", updated twice a second on a terminal and every 30 s otherwise, and always at
// done == total. loss < 0: not shown. p needs only progress_open(p, NULL, 0, 0, -1, ...).
void progress_count(Progress *p, const char *label, long long done, long long total, double loss);
// A message on its own line (clears the progress line first).
void progress_note(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_close(Progress *p);

#endif
