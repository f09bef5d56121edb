// checkpoint.h: our checkpoint format, written atomically.
//
// Layout: "RFRMCKPT" | u32 version | u32 header length | header JSON (the resolved config,
// step, seeds, RNG states, the tensor table) | zero padding to 64 bytes | float32 data:
// parameters, then the optimizer state when present (Adam's m and v, or Adafactor's factored
// statistics: the header's opt_floats says how many floats) | u32 zlib crc32 of every byte before it.
// Readers check magic, version, every length against the file size, the tensor table against
// the model, and the CRC, before anything is used.
#ifndef REFORMER_CHECKPOINT_H
#define REFORMER_CHECKPOINT_H

#include <stddef.h>

#include "../core/optim.h"
#include "../core/model.h"
#include "../core/rng.h"
#include "config.h"

typedef struct {
    long long step;     // optimizer steps taken
    Rng data_rng;       // the training data stream
    double best_valid;  // best validation loss so far (1e300: none)
    int ranks;          // processes of the run that saved it (data-parallel ranks)
} TrainState;

// Writes path.tmp, fsyncs it, renames it over path and fsyncs the directory, so a
// crash leaves either the old checkpoint or the new one. opt may be NULL. In a job of
// several ranks every rank calls it: rank 0 writes, gathering the optimizer state slice by
// slice when the ranks hold slices of it (ZeRO-1), and every rank gets rank 0's result.
int checkpoint_save(const char *path, const Config *cfg, const Model *m, const OptimState *opt,
                    const TrainState *st, char *err, size_t cap);

// Reads only the config stored in the checkpoint (to build the model).
int checkpoint_read_config(const char *path, Config *cfg, char *err, size_t cap);

// Loads parameters (and optimizer state and training state when opt / st are given)
// into a model built from the checkpoint's config. A state that is a slice of the whole
// (optim_init_model over a slice) reads its slice: a run resumes under any rank count.
int checkpoint_load(const char *path, Model *m, OptimState *opt, TrainState *st, char *err,
                    size_t cap);

#endif
