// png.h: a PNG writer of our own on zlib (RFC 2083: signature, IHDR, one IDAT of
// deflated rows with filter byte 0, IEND; each chunk's CRC32 over type and data).
#ifndef REFORMER_PNG_H
#define REFORMER_PNG_H

#include <stddef.h>
#include <stdint.h>

// Writes rgb (h, w, 3) to path through path.tmp and a rename, so a failed write never
// leaves half a file. Returns 0, or -1 with one line in err.
int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, char *err, size_t cap);

// Tiles n images (side x side RGB) into one sheet of `cols` columns with `gap` pixels of
// white between them; the sheet is (h, w, 3) with w, h from png_sheet_size.
void png_sheet_size(int n, int side, int cols, int gap, int *w, int *h);
void png_sheet(const uint8_t *images, int n, int side, int cols, int gap, uint8_t *sheet);

#endif
