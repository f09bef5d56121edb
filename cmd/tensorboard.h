// tensorboard.h: TensorBoard event files, the format trax's SummaryWriter writes, so that
// `tensorboard --logdir RUN` shows a run's curves.
//
// A file DIR/events.out.tfevents.<seconds>.<host> holds records
//     u64 length | u32 masked CRC32C of the length | data | u32 masked CRC32C of the data
// (little-endian; masked = rotate right by 15, plus 0xa282ead8), each data an Event protobuf:
//     wall_time (1, double) step (2, int64) file_version (3, "brain.Event:2", first record)
//     summary (5) { value (1) { tag (1, string) simple_value (2, float) } }
//     session_log (6) { status (1) = START }   (a resumed run: TensorBoard drops later steps)
#ifndef REFORMER_TENSORBOARD_H
#define REFORMER_TENSORBOARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
} EventWriter;

// Opens a new event file in dir (and writes its version record). With resume_step >= 0 it
// also records a restart at resume_step + 1; without, earlier event files in dir are
// removed. Returns 0 or -1 with err.
int events_open(EventWriter *w, const char *dir, long long resume_step, char *err, size_t cap);
// One scalar of a step, flushed. Returns 0 or -1 (a write error; the run goes on).
int events_scalar(EventWriter *w, const char *tag, long long step, float value);
void events_close(EventWriter *w);

// CRC-32C (Castagnoli), as the record framing uses it (tests check it against known values).
uint32_t events_crc32c(const uint8_t *p, size_t n);

#endif
