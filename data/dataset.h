// dataset.h: what training and evaluation read, whatever the source.
//   copy:       the duplication task, generated (data/copy.c)
//   enwik8:     bytes of enwik8 (zip, gzip or raw, data/archive.c), split 90% / 5% / 5%
//               (90M / 5M / 5M for the real 100,000,000-byte file), one token per byte.
//   imagenet64: one 64x64 image (12,288 bytes) per sequence, streamed from the published
//               .npz archives (data/imagenet.c); train from data.path, valid from
//               data.valid_path (the published validation set; there is no test split).
//   listops:    the Long Range Arena's ListOps: data.path is a directory with basic_train.tsv,
//               basic_val.tsv and basic_test.tsv (data/listops.c); one expression a sequence,
//               padded at the end to the batch's length, and its class.
#ifndef REFORMER_DATASET_H
#define REFORMER_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "../core/rng.h"
#include "imagenet.h"
#include "listops.h"

enum { DATA_COPY = 0, DATA_ENWIK8 = 1, DATA_IMAGENET64 = 2, DATA_LISTOPS = 3 };
enum { SPLIT_TRAIN = 0, SPLIT_VALID = 1, SPLIT_TEST = 2 };

#define DATA_PATH_MAX 1024

typedef struct {
    int kind;
    char path[DATA_PATH_MAX];        // enwik8 file; imagenet64 training archives; listops directory
    char valid_path[DATA_PATH_MAX];  // imagenet64 validation archive
    int seq_len;
    int shuffle_images;              // imagenet64: images per shuffled block
    int pixel_order;                 // imagenet64: PIXELS_RGB or PIXELS_PLANAR
    int token_offset;                // token = byte + offset (HuggingFace's enwik8 models: 2)
} DataConfig;

typedef struct {
    int kind;
    int vocab;
    uint8_t *bytes;        // enwik8: the whole file
    size_t len;
    size_t start[3], count[3];  // byte range of each split
    int proportional;      // 1 when the file is not the 100,000,000-byte original
    ImageSet images[2];    // imagenet64: [SPLIT_TRAIN], [SPLIT_VALID]
    int pixel_order;
    int token_offset;
    uint64_t images_read;  // imagenet64: training images consumed so far
    ListopsSet lists[3];   // listops: each split's expressions
} Dataset;

// Per sequence of a batch, what some kinds have besides tokens: the real length (the rest is
// padding, token 0) and the class. Either may be NULL where the caller needs none; kinds
// without them give length T and class -1.
typedef struct {
    int *valid;
    int *label;
} SeqMeta;

// Loads (or, for images, lists and checks) what the data kind needs; seed fixes the
// training order. Returns 0, or -1 with err naming file and problem.
int dataset_open(Dataset *d, const DataConfig *dc, int vocab, uint64_t seed, char *err, size_t cap);
// Text to score whole (eval --data): path's bytes (a zip, gzip or raw file), all of them the
// test split; for kind DATA_LISTOPS, one ListOps TSV file of sequences of up to max_len tokens.
// Returns 0, or -1 with err.
int dataset_open_file(Dataset *d, int kind, const char *path, int vocab, int token_offset, int max_len, char *err,
                      size_t cap);
void dataset_close(Dataset *d);

// The next batch of B training sequences: copy sequences, windows at uniform random offsets
// of the train split (rng), or the next B training images. tokens (count, T) receives
// sequences [first, first + count) of it (a data-parallel rank's share; 0, B in one
// process): every rank draws the same batch and reads only its share. Returns 0, or -1
// with err (a damaged archive). ListOps: B expressions drawn uniformly (with replacement),
// each padded to T; meta (count) receives their lengths and classes.
int dataset_train_batch(Dataset *d, int *tokens, SeqMeta meta, int B, int first, int count, int T, Rng *rng,
                        char *err, size_t cap);
// Resuming: `sequences` training sequences were already consumed (images only; text
// windows come from the rng saved in the checkpoint).
void dataset_train_seek(Dataset *d, uint64_t sequences);

// Evaluation windows of a split. Text: window k starts at k * (T - 1), so consecutive
// windows share one byte and every byte after the split's first is predicted once; the
// last window is aligned to the split's end and *skip says how many of its leading
// labels were already predicted. Images: window k is image k (skip 0). ListOps: window k is
// expression k padded to T, meta (one) its length and class.
size_t dataset_eval_windows(const Dataset *d, int split, int T);
int dataset_eval_window(Dataset *d, int split, int T, size_t k, int *tokens, SeqMeta meta, int *skip, char *err,
                        size_t cap);

// The real length of window k of split: a ListOps expression's tokens, T otherwise.
int dataset_eval_length(const Dataset *d, int split, int T, size_t k);

// Rows of `from` tokens become rows of `to` in place: the first `to` of each when shorter, the row
// and padding 0 after it when longer (the buffer holds count x max(from, to)).
void dataset_restride(int *tokens, int count, int from, int to);

#endif
