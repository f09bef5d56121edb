// png.c: 8-bit RGB PNG files and contact sheets.
#include "png.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../core/common.h"
#include "files.h"

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
        set_error(err, cap, "%s: out of memory", path);
        return -1;
    }
    for (int y = 0; y < h; y++) {  // filter type 0 (None) on every row
        raw[(size_t)y * row] = 0;
        memcpy(raw + (size_t)y * row + 1, rgb + (size_t)y * w * 3, (size_t)w * 3);
    }
    int rc = compress2(packed, &packed_len, raw, (uLong)raw_len, 9) == Z_OK ? 0 : -1;
    free(raw);
    if (rc) {
        free(packed);
        return set_error(err, cap, "%s: compression failed", path);
    }
    AtomicFile a;
    if (files_create(&a, path, err, cap)) {
        free(packed);
        return -1;
    }
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;   // bits per sample
    ihdr[9] = 2;   // colour type: RGB
    ihdr[10] = ihdr[11] = ihdr[12] = 0;  // deflate, adaptive filtering, no interlace
    rc = fwrite("\x89PNG\r\n\x1a\n", 1, 8, a.f) == 8 ? 0 : -1;
    if (!rc) rc = write_chunk(a.f, "IHDR", ihdr, 13);
    if (!rc) rc = write_chunk(a.f, "IDAT", packed, packed_len);
    if (!rc) rc = write_chunk(a.f, "IEND", NULL, 0);
    free(packed);
    rc = files_commit(&a, rc, err, cap);
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

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

int png_decode_rgb(const uint8_t *buf, size_t len, int w, int h, uint8_t *rgb, const char *name, char *err,
                   size_t cap) {
    if (len < 8 || memcmp(buf, "\x89PNG\r\n\x1a\n", 8)) return set_error(err, cap, "%s: not a PNG (bad signature)", name);
    int channels = 0, seen_ihdr = 0, seen_end = 0;
    size_t row = 0, raw_len = 0;
    uint8_t *raw = NULL;
    z_stream z;
    memset(&z, 0, sizeof(z));
    int rc = 0, zlive = 0, zdone = 0;
    for (size_t at = 8; !rc && !seen_end;) {
        if (at + 12 > len) { rc = set_error(err, cap, "%s: truncated PNG (chunk header at %zu)", name, at); break; }
        uint32_t n = be32(buf + at);
        const uint8_t *type = buf + at + 4, *data = buf + at + 8;
        if (n > len - at - 12) { rc = set_error(err, cap, "%s: truncated PNG (chunk of %u bytes at %zu)", name, n, at); break; }
        if ((uint32_t)crc32(crc32(0L, type, 4), data, n) != be32(data + n)) {
            rc = set_error(err, cap, "%s: PNG chunk %.4s fails its CRC", name, (const char *)type);
            break;
        }
        if (!memcmp(type, "IHDR", 4)) {
            if (n != 13 || seen_ihdr) {
                rc = set_error(err, cap, "%s: PNG header chunk %s", name, seen_ihdr ? "repeated" : "is not 13 bytes");
                break;
            }
            uint32_t pw = be32(data), ph = be32(data + 4);
            int depth = data[8], color = data[9];
            if (pw != (uint32_t)w || ph != (uint32_t)h) rc = set_error(err, cap, "%s: %ux%u PNG; expected %dx%d", name, pw, ph, w, h);
            else if (depth != 8 || (color != 2 && color != 0)) rc = set_error(err, cap, "%s: PNG of bit depth %d, colour type %d; 8-bit RGB or grey is read", name, depth, color);
            else if (data[10] || data[11] || data[12]) rc = set_error(err, cap, "%s: interlaced or unknown-method PNG", name);
            else {
                channels = color == 2 ? 3 : 1;
                row = (size_t)w * channels;
                raw_len = (row + 1) * (size_t)h;
                raw = malloc(raw_len);
                if (!raw || inflateInit(&z) != Z_OK) rc = set_error(err, cap, "%s: out of memory", name);
                else {
                    zlive = 1;
                    z.next_out = raw;
                    z.avail_out = (uInt)raw_len;
                }
                seen_ihdr = 1;
            }
        } else if (!memcmp(type, "IDAT", 4)) {
            if (!seen_ihdr) { rc = set_error(err, cap, "%s: PNG image data before its header", name); break; }
            z.next_in = (uint8_t *)data;
            z.avail_in = n;
            while (!rc && z.avail_in && !zdone) {
                int r = inflate(&z, Z_NO_FLUSH);
                if (r == Z_STREAM_END) zdone = 1;
                else if (r != Z_OK) rc = set_error(err, cap, "%s: corrupt PNG image data (%s)", name, z.msg ? z.msg : "zlib");
                else if (z.avail_out == 0 && z.avail_in) rc = set_error(err, cap, "%s: PNG image data longer than %dx%d", name, w, h);
            }
        } else if (!memcmp(type, "IEND", 4)) {
            seen_end = 1;
        } else if (!(type[0] & 0x20)) {  // an unknown critical chunk (PLTE with colour type 3 is refused above)
            rc = set_error(err, cap, "%s: PNG chunk %.4s is not one we read", name, (const char *)type);
        }
        at += 12 + (size_t)n;
    }
    if (!rc && (!seen_ihdr || !zdone || z.avail_out != 0))
        rc = set_error(err, cap, "%s: PNG image data %s", name, !seen_ihdr ? "missing" : "shorter than its size");
    // undo the row filters: each byte's left (a), up (b) and upper-left (c) neighbours
    const int bpp = channels;
    for (int y = 0; !rc && y < h; y++) {
        uint8_t *cur = raw + (size_t)y * (row + 1), *prev = y ? cur - (row + 1) : NULL, f = cur[0];
        uint8_t *px = cur + 1, *up = prev ? prev + 1 : NULL;
        if (f > 4) { rc = set_error(err, cap, "%s: PNG row %d has filter type %d", name, y, f); break; }
        for (size_t i = 0; i < row; i++) {
            int a = i >= (size_t)bpp ? px[i - bpp] : 0, b = up ? up[i] : 0, cc = up && i >= (size_t)bpp ? up[i - bpp] : 0;
            int add = f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : f == 4 ? paeth(a, b, cc) : 0;
            px[i] = (uint8_t)(px[i] + add);
        }
    }
    for (int y = 0; !rc && y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < 3; k++)
                rgb[((size_t)y * w + x) * 3 + k] = raw[(size_t)y * (row + 1) + 1 + (size_t)x * channels + (channels == 3 ? k : 0)];
    if (zlive) inflateEnd(&z);
    free(raw);
    return rc;
}
