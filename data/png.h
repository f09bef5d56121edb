// png.h: PNG files of our own on zlib (RFC 2083). The writer: signature, IHDR, one IDAT of
// deflated rows with filter byte 0, IEND; each chunk's CRC32 over type and data. The reader
// (for van den Oord's 64x64 ImageNet): 8-bit RGB or grey, not interlaced, any IDAT split,
// the five row filters, every chunk's CRC checked.
#ifndef REFORMER_PNG_H
#define REFORMER_PNG_H

#include <stddef.h>
#include <stdint.h>

// Writes rgb (h, w, 3) to path through path.tmp and a rename, so a failed write never
// leaves half a file. Returns 0, or -1 with one line in err.
int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, char *err, size_t cap);

// Decodes the PNG in buf (len bytes) into rgb (h, w, 3), which must be its size.
// Returns 0, or -1 with one line in err naming `name` and the problem.
int png_decode_rgb(const uint8_t *buf, size_t len, int w, int h, uint8_t *rgb, const char *name, char *err,
                   size_t cap);

// Tiles n images (side x side RGB) into one sheet of `cols` columns with `gap` pixels of
// white between them; the sheet is (h, w, 3) with w, h from png_sheet_size.
void png_sheet_size(int n, int side, int cols, int gap, int *w, int *h);
void png_sheet(const uint8_t *images, int n, int side, int cols, int gap, uint8_t *sheet);

#endif
