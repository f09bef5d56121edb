// png.c: 8-bit RGB PNG files and contact sheets.
#include "png.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int write_chunk(FILE *f, const char *type, const uint8_t *data, size_t n) {
    uint8_t head[8], tail[4];
    put_be32(head, (uint32_t)n);
    memcpy(head + 4, type, 4);
    uint32_t crc = (uint32_t)crc32(0L, head + 4, 4);
    if (n) crc = (uint32_t)crc32(crc, data, (uInt)n);
    put_be32(tail, crc);
    return fwrite(head, 1, 8, f) == 8 && (n == 0 || fwrite(data, 1, n, f) == n) && fwrite(tail, 1, 4, f) == 4 ? 0 : -1;
}

int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, char *err, size_t cap) {
    size_t row = (size_t)w * 3 + 1, raw_len = row * (size_t)h;
    uint8_t *raw = malloc(raw_len);
    uLongf packed_len = compressBound((uLong)raw_len);
    uint8_t *packed = malloc(packed_len);
    if (!raw || !packed) {
        free(raw);
        free(packed);
        snprintf(err, cap, "%s: out of memory", path);
        return -1;
    }
    for (int y = 0; y < h; y++) {  // filter type 0 (None) on every row
        raw[(size_t)y * row] = 0;
        memcpy(raw + (size_t)y * row + 1, rgb + (size_t)y * w * 3, (size_t)w * 3);
    }
    int rc = compress2(packed, &packed_len, raw, (uLong)raw_len, 9) == Z_OK ? 0 : -1;
    free(raw);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = rc ? NULL : fopen(tmp, "wb");
    if (!f) {
        free(packed);
        snprintf(err, cap, "%s: cannot write: %s", tmp, rc ? "compression failed" : strerror(errno));
        return -1;
    }
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;   // bits per sample
    ihdr[9] = 2;   // colour type: RGB
    ihdr[10] = ihdr[11] = ihdr[12] = 0;  // deflate, adaptive filtering, no interlace
    rc = fwrite("\x89PNG\r\n\x1a\n", 1, 8, f) == 8 ? 0 : -1;
    if (!rc) rc = write_chunk(f, "IHDR", ihdr, 13);
    if (!rc) rc = write_chunk(f, "IDAT", packed, packed_len);
    if (!rc) rc = write_chunk(f, "IEND", NULL, 0);
    free(packed);
    if (fflush(f) || fsync(fileno(f))) rc = -1;
    if (fclose(f)) rc = -1;
    if (!rc && rename(tmp, path)) rc = -1;
    if (rc) {
        snprintf(err, cap, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
    }
    return rc;
}

void png_sheet_size(int n, int side, int cols, int gap, int *w, int *h) {
    int c = n < cols ? n : cols, r = (n + cols - 1) / cols;
    *w = c * side + (c + 1) * gap;
    *h = r * side + (r + 1) * gap;
}

void png_sheet(const uint8_t *images, int n, int side, int cols, int gap, uint8_t *sheet) {
    int w, h;
    png_sheet_size(n, side, cols, gap, &w, &h);
    memset(sheet, 255, (size_t)w * h * 3);
    for (int i = 0; i < n; i++) {
        int x0 = gap + (i % cols) * (side + gap), y0 = gap + (i / cols) * (side + gap);
        for (int y = 0; y < side; y++)
            memcpy(sheet + ((size_t)(y0 + y) * w + x0) * 3, images + ((size_t)i * side * side + (size_t)y * side) * 3,
                   (size_t)side * 3);
    }
}
