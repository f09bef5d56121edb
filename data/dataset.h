// dataset.h: what training and evaluation read, whatever the source.
//   copy:   the duplication task, generated (data/copy.c)
//   enwik8: bytes of enwik8 (zip, gzip or raw, data/archive.c), split 90% / 5% / 5%
//           (90M / 5M / 5M for the real 100,000,000-byte file), one token per byte.
#ifndef REFORMER_DATASET_H
#define REFORMER_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "../core/rng.h"

enum { DATA_COPY = 0, DATA_ENWIK8 = 1, DATA_IMAGENET64 = 2 };
enum { SPLIT_TRAIN = 0, SPLIT_VALID = 1, SPLIT_TEST = 2 };

typedef struct {
    int kind;              // DATA_COPY or DATA_ENWIK8
    int vocab;
    uint8_t *bytes;        // enwik8: the whole file
    size_t len;
    size_t start[3], count[3];  // byte range of each split
    int proportional;      // 1 when the file is not the 100,000,000-byte original
} Dataset;

// Loads what the data kind needs. Returns 0, or -1 with err naming file and problem.
int dataset_open(Dataset *d, int kind, const char *path, int vocab, char *err, size_t cap);
void dataset_close(Dataset *d);

// tokens (B, T): copy sequences, or windows at uniform random offsets of the train split.
void dataset_train_batch(const Dataset *d, int *tokens, int B, int T, Rng *rng);

// Evaluation windows of a byte split: window k starts at k * (T - 1), so consecutive
// windows share one byte and every byte after the split's first is predicted once.
// The last window is aligned to the split's end; *skip says how many of its leading
// labels were already predicted. Returns the number of windows.
size_t dataset_eval_windows(const Dataset *d, int split, int T);
void dataset_eval_window(const Dataset *d, int split, int T, size_t k, int *tokens, int *skip);

#endif
