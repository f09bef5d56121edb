// dataset.c: sources, splits and windows.
#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/common.h"
#include "archive.h"
#include "copy.h"

#define ENWIK8_BYTES 100000000ull
// Text is held whole in memory: 2 GiB is twice enwik9, and bounds what a damaged or
// hostile archive (a gzip of zeros) can make us allocate before it is refused.
#define MAX_TEXT_BYTES (1ull << 31)

int dataset_open(Dataset *d, const DataConfig *dc, int vocab, uint64_t seed, char *err, size_t cap) {
    memset(d, 0, sizeof(*d));
    d->kind = dc->kind;
    d->vocab = vocab;
    d->token_offset = dc->token_offset;
    if (dc->kind == DATA_COPY) return 0;
    if (dc->path[0] == '\0')  // checked here, not in the config: `train --data PATH` may give it
        return set_error(err, cap, "data.path: required for data.kind %s (or train --data PATH)",
                         dc->kind == DATA_ENWIK8 ? "enwik8" : dc->kind == DATA_LISTOPS ? "listops" : "imagenet64");
    if (dc->kind == DATA_LISTOPS) {
        static const char *const FILES[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};
        for (int s = 0; s < 3; s++) {
            char path[DATA_PATH_MAX + 32];
            snprintf(path, sizeof(path), "%s/%s", dc->path, FILES[s]);
            if (listops_read(&d->lists[s], path, dc->seq_len, err, cap)) {
                dataset_close(d);
                return -1;
            }
            d->count[s] = d->lists[s].count;
        }
        return 0;
    }
    if (dc->kind == DATA_IMAGENET64) {
        d->pixel_order = dc->pixel_order;
        if (imageset_open(&d->images[SPLIT_TRAIN], dc->path, dc->shuffle_images, seed, err, cap)) return -1;
        if (imageset_open(&d->images[SPLIT_VALID], dc->valid_path, 1, seed, err, cap)) {
            imageset_close(&d->images[SPLIT_TRAIN]);
            return -1;
        }
        return 0;
    }
    const char *path = dc->path;
    int fmt;
    // the member `enwik8`, or the one file of a zip that holds one under another name
    if (archive_read_all(path, "enwik8", 1, MAX_TEXT_BYTES, &d->bytes, &d->len, &fmt, err, cap)) return -1;
    if (d->len < 1000) {
        set_error(err, cap, "%s: %zu bytes is too little text to split", path, d->len);
        free(d->bytes);
        d->bytes = NULL;
        return -1;
    }
    // the standard byte split; a smaller file is split by the same proportions
    d->proportional = d->len != ENWIK8_BYTES;
    d->count[SPLIT_VALID] = d->len / 20;
    d->count[SPLIT_TEST] = d->len / 20;
    d->count[SPLIT_TRAIN] = d->len - d->count[SPLIT_VALID] - d->count[SPLIT_TEST];
    d->start[SPLIT_TRAIN] = 0;
    d->start[SPLIT_VALID] = d->count[SPLIT_TRAIN];
    d->start[SPLIT_TEST] = d->start[SPLIT_VALID] + d->count[SPLIT_VALID];
    return 0;
}

int dataset_open_file(Dataset *d, int kind, const char *path, int vocab, int token_offset, int max_len, char *err,
                      size_t cap) {
    memset(d, 0, sizeof(*d));
    d->kind = kind == DATA_LISTOPS ? DATA_LISTOPS : DATA_ENWIK8;
    d->vocab = vocab;
    d->token_offset = token_offset;
    if (kind == DATA_LISTOPS) {
        if (listops_read(&d->lists[SPLIT_TEST], path, max_len, err, cap)) return -1;
        d->count[SPLIT_TEST] = d->lists[SPLIT_TEST].count;
        return 0;
    }
    int fmt;
    if (archive_read_all(path, NULL, 1, MAX_TEXT_BYTES, &d->bytes, &d->len, &fmt, err, cap)) return -1;
    if (d->len < 2) {
        set_error(err, cap, "%s: %zu bytes: nothing to predict", path, d->len);
        free(d->bytes);
        d->bytes = NULL;
        return -1;
    }
    d->count[SPLIT_TEST] = d->len;
    return 0;
}

void dataset_close(Dataset *d) {
    if (d->kind == DATA_IMAGENET64) {
        imageset_close(&d->images[SPLIT_TRAIN]);
        imageset_close(&d->images[SPLIT_VALID]);
    }
    for (int s = 0; s < 3; s++) listops_free(&d->lists[s]);
    free(d->bytes);
    memset(d, 0, sizeof(*d));
}

// Expression k of split s into row (T), padded with 0; its length and class into meta[i].
static void listops_row(const Dataset *d, int s, size_t k, int *row, int T, SeqMeta meta, int i) {
    const ListopsSet *l = &d->lists[s];
    int n = l->len[k];
    memcpy(row, l->ids + l->start[k], (size_t)n * sizeof(int));
    memset(row + n, 0, (size_t)(T - n) * sizeof(int));
    if (meta.valid) meta.valid[i] = n;
    if (meta.label) meta.label[i] = l->label[k];
}

// Kinds without padding or classes: every position real, no class.
static void plain_meta(SeqMeta meta, int count, int T) {
    for (int i = 0; i < count; i++) {
        if (meta.valid) meta.valid[i] = T;
        if (meta.label) meta.label[i] = -1;
    }
}

int dataset_eval_length(const Dataset *d, int split, int T, size_t k) {
    return d->kind == DATA_LISTOPS ? d->lists[split].len[k] : T;
}

void dataset_restride(int *tokens, int count, int from, int to) {
    if (to <= from) {
        for (int b = 1; b < count; b++) memmove(tokens + (size_t)b * to, tokens + (size_t)b * from, (size_t)to * sizeof(int));
        return;
    }
    for (int b = count - 1; b >= 0; b--) {  // last row first: rows move later
        memmove(tokens + (size_t)b * to, tokens + (size_t)b * from, (size_t)from * sizeof(int));
        memset(tokens + (size_t)b * to + from, 0, (size_t)(to - from) * sizeof(int));
    }
}

int dataset_train_batch(Dataset *d, int *tokens, SeqMeta meta, int B, int first, int count, int T, Rng *rng,
                        char *err, size_t cap) {
    if (d->kind == DATA_LISTOPS) {
        for (int b = 0; b < B; b++) {
            size_t k = rng_below(rng, (uint32_t)d->lists[SPLIT_TRAIN].count);
            if (b >= first && b < first + count)
                listops_row(d, SPLIT_TRAIN, k, tokens + (size_t)(b - first) * T, T, meta, b - first);
        }
        return 0;
    }
    plain_meta(meta, count, T);
    if (d->kind == DATA_COPY && count == B) {
        copy_batch(tokens, B, T, d->vocab, rng);
        return 0;
    }
    if (d->kind == DATA_COPY) {  // cheap to make: all of them, this share kept
        int *all = xmalloc((size_t)B * T * sizeof(int));
        copy_batch(all, B, T, d->vocab, rng);
        memcpy(tokens, all + (size_t)first * T, (size_t)count * T * sizeof(int));
        xfree(all);
        return 0;
    }
    if (d->kind == DATA_IMAGENET64) {
        uint8_t img[IMAGE_BYTES];
        for (int b = 0; b < count; b++) {
            if (imageset_train_image(&d->images[SPLIT_TRAIN], d->images_read + first + b, img, err, cap)) return -1;
            image_to_tokens(img, d->pixel_order, tokens + (size_t)b * T);
            for (int t = 0; t < T; t++) tokens[(size_t)b * T + t] += d->token_offset;
        }
        d->images_read += B;
        return 0;
    }
    size_t span = d->count[SPLIT_TRAIN] - (size_t)T + 1;
    for (int b = 0; b < B; b++) {
        // two draws: offsets beyond 2^32 for files that large
        uint64_t r = ((uint64_t)rng_below(rng, 1u << 31) << 31) | rng_below(rng, 1u << 31);
        if (b < first || b >= first + count) continue;
        const uint8_t *src = d->bytes + d->start[SPLIT_TRAIN] + r % span;
        for (int t = 0; t < T; t++) tokens[(size_t)(b - first) * T + t] = src[t] + d->token_offset;
    }
    return 0;
}

void dataset_train_seek(Dataset *d, uint64_t sequences) {
    if (d->kind == DATA_IMAGENET64) d->images_read = sequences;
}

size_t dataset_eval_windows(const Dataset *d, int split, int T) {
    if (d->kind == DATA_LISTOPS) return d->lists[split].count;
    if (d->kind == DATA_IMAGENET64) return split == SPLIT_TEST ? 0 : (size_t)d->images[split].total;
    size_t n = d->count[split];
    if (n < (size_t)T) return 0;
    return (n - 1 + (T - 2)) / (T - 1);  // ceil((n - 1) / (T - 1)) windows of T - 1 labels
}

int dataset_eval_window(Dataset *d, int split, int T, size_t k, int *tokens, SeqMeta meta, int *skip, char *err,
                        size_t cap) {
    *skip = 0;
    if (d->kind == DATA_LISTOPS) {
        listops_row(d, split, k, tokens, T, meta, 0);
        return 0;
    }
    plain_meta(meta, 1, T);
    if (d->kind == DATA_IMAGENET64) {
        uint8_t img[IMAGE_BYTES];
        if (imageset_read(&d->images[split], k, img, err, cap)) return -1;
        image_to_tokens(img, d->pixel_order, tokens);
        for (int t = 0; t < T; t++) tokens[t] += d->token_offset;
        return 0;
    }
    size_t n = d->count[split], start = k * (T - 1);
    if (start + T > n) {  // the tail: align to the end, skip labels already counted
        size_t end_start = n - T;
        *skip = (int)(start - end_start);
        start = end_start;
    }
    const uint8_t *src = d->bytes + d->start[split] + start;
    for (int t = 0; t < T; t++) tokens[t] = src[t] + d->token_offset;
    return 0;
}
