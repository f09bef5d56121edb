// imagenet.h: downsampled ImageNet 64x64 as published, in either of its two forms:
//   Chrabaszcz et al. 2017: zips of .npz batches (Imagenet64_train_part1_npz.zip, ...,
//     Imagenet64_val_npz.zip) or single .npz files; each .npz holds data.npy, uint8
//     [N, 12288], every image channel-planar (64x64 R, then G, then B, rows top to bottom);
//   van den Oord et al. 2016 (the set the Reformer paper used): tars of 64x64 PNG files
//     (train_64x64.tar, valid_64x64.tar), in tar order;
// or a directory of such files (.npz, .zip, .tar, in name order). Their bits per dim are
// not comparable with each other: the images were downsampled differently.
//
// Nothing is unpacked: an .npz member is inflated as it is read, inside its outer zip
// member when nested (data/stream.c), so memory is one shuffle block however large the
// archive. Training order is a pure function of (seed, image count k): epoch k / N reads
// the sources in its own seeded order, cut into blocks of `shuffle` images, each block
// permuted by its own seed. Resuming at step s therefore needs nothing stored: it reads
// from image s * batch, which is how --resume stays bit-exact with a shuffle buffer.
#ifndef REFORMER_IMAGENET_H
#define REFORMER_IMAGENET_H

#include <stdint.h>
#include <stdio.h>

#include "stream.h"
#include "zip.h"

#define IMAGE_SIDE 64
#define IMAGE_BYTES (IMAGE_SIDE * IMAGE_SIDE * 3)

enum { SOURCE_NPZ = 0, SOURCE_NESTED_NPZ = 1, SOURCE_PNG_TAR = 2 };

typedef struct {
    char path[1024];
    int kind;            // SOURCE_*
    ZipEntry entry;      // SOURCE_NESTED_NPZ: the .npz member of the zip at path
    uint64_t images;     // rows of its data.npy, or PNG files of the tar
    uint64_t *png_at;    // SOURCE_PNG_TAR: (images) offset of each PNG in the tar
    uint32_t *png_len;   // (images) its length
} ImageSource;

typedef struct {
    ImageSource *src;    // (n_src) in listing order
    int n_src;
    uint64_t total;      // images of all sources
    // the open reader: source `cur` (-1: none) positioned at its image `next`
    int cur;
    uint64_t next;
    FILE *f;
    Stream range, outer, inner;
    // training order
    int shuffle;         // images per permuted block
    uint64_t seed;
    uint8_t *block;      // (shuffle, IMAGE_BYTES) the loaded block
    uint32_t *perm;      // (shuffle)
    uint64_t block_epoch, block_index;  // which block is loaded; block_epoch UINT64_MAX: none
    int *order;          // (n_src) source order of block_epoch
} ImageSet;

// Lists and checks every source under path (a file or a directory of .npz / .zip files).
// Returns 0, or -1 with one line in err naming the file and what is wrong.
int imageset_open(ImageSet *s, const char *path, int shuffle, uint64_t seed, char *err, size_t cap);
void imageset_close(ImageSet *s);
// Image k in listing order (no shuffling), as stored. Sequential k is cheap.
int imageset_read(ImageSet *s, uint64_t k, uint8_t *img, char *err, size_t cap);
// The k-th image of the training order described above.
int imageset_train_image(ImageSet *s, uint64_t k, uint8_t *img, char *err, size_t cap);

// Pixel orders of a sequence: as stored (planar) or RGB interleaved (pixel by pixel).
enum { PIXELS_RGB = 0, PIXELS_PLANAR = 1 };
void image_to_tokens(const uint8_t *img, int order, int *tok);      // (IMAGE_BYTES) -> tokens
void image_from_tokens(const int *tok, int order, uint8_t *rgb);    // tokens -> interleaved RGB

#endif
