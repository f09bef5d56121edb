// tar.h: the members of a POSIX (ustar) or GNU tar file, walked header by header: how van
// den Oord's 64x64 ImageNet (train_64x64.tar, valid_64x64.tar: one PNG per image) is read
// without unpacking. Each header's checksum is verified; GNU long names ('L') and pax
// headers ('x', 'g') are understood or skipped.
#ifndef REFORMER_TAR_H
#define REFORMER_TAR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// 1 when the 512-byte block looks like a ustar/GNU header ("ustar" at offset 257).
int tar_is_header(const uint8_t *block);

// Calls fn(ctx, name, data offset, size) for every regular file of the tar file f (size
// bytes); fn returns 0 to go on, nonzero to stop with an error it wrote. Returns 0 or -1.
int tar_walk(FILE *f, long long size, const char *path,
             int (*fn)(void *ctx, const char *name, uint64_t offset, uint64_t len), void *ctx, char *err,
             size_t cap);

#endif
