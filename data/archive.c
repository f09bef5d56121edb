// archive.c: zip (PKWARE APPNOTE: end of central directory, central and local headers),
// gzip (RFC 1952, through zlib's gzip wrapper) and raw files.
#include "archive.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int read_at(FILE *f, long long off, void *dst, size_t n) {
    return fseeko(f, off, SEEK_SET) == 0 && fread(dst, 1, n, f) == n ? 0 : -1;
}

// Inflates from f (at its position) in raw (-15) or gzip (31) mode into out, which holds
// exactly `expect` bytes when expect != SIZE_MAX; otherwise grows up to limit.
static int inflate_stream(FILE *f, long long in_len, int window_bits, uint8_t **out, size_t *out_len,
                          size_t expect, size_t limit, const char *path, char *err, size_t cap) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, window_bits) != Z_OK) return fail(err, cap, "%s: zlib init failed", path);
    size_t room = expect != SIZE_MAX ? expect : (1u << 20), have = 0;
    uint8_t *buf = malloc(room ? room : 1), in[1 << 16];
    int rc = Z_OK, status = 0;
    long long left = in_len;
    while (buf && rc != Z_STREAM_END) {
        if (z.avail_in == 0) {
            size_t want = left >= 0 && left < (long long)sizeof(in) ? (size_t)left : sizeof(in);
            size_t got = want ? fread(in, 1, want, f) : 0;
            if (got == 0) { status = fail(err, cap, "%s: truncated: the compressed data ends early", path); break; }
            if (left >= 0) left -= got;
            z.next_in = in;
            z.avail_in = (uInt)got;
        }
        if (have == room) {
            if (expect != SIZE_MAX) { status = fail(err, cap, "%s: inflates to more than the declared %zu bytes (zip bomb or corrupt size)", path, expect); break; }
            if (room >= limit) { status = fail(err, cap, "%s: inflates to more than %zu bytes", path, limit); break; }
            room = room * 2 > limit ? limit : room * 2;
            uint8_t *grown = realloc(buf, room);
            if (!grown) break;
            buf = grown;
        }
        z.next_out = buf + have;
        z.avail_out = (uInt)((room - have) > (1u << 30) ? (1u << 30) : room - have);
        size_t before = z.avail_out;
        rc = inflate(&z, Z_NO_FLUSH);
        have += before - z.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            status = fail(err, cap, "%s: corrupt compressed data (%s)", path, z.msg ? z.msg : "zlib error");
            break;
        }
    }
    inflateEnd(&z);
    if (!buf && !status) status = fail(err, cap, "%s: out of memory", path);
    if (!status && expect != SIZE_MAX && have != expect)
        status = fail(err, cap, "%s: inflated %zu bytes, the header declares %zu", path, have, expect);
    if (status) { free(buf); return -1; }
    *out = buf;
    *out_len = have;
    return 0;
}

static int read_zip(FILE *f, long long size, const char *path, const char *member, int or_only_file,
                    size_t limit, uint8_t **data, size_t *len, char *err, size_t cap) {
    // the end of central directory record sits in the last 22 + 65535 bytes
    long long tail = size < 65557 ? size : 65557;
    uint8_t *t = malloc((size_t)tail);
    if (!t || read_at(f, size - tail, t, (size_t)tail)) { free(t); return fail(err, cap, "%s: cannot read the zip directory", path); }
    long long eocd = -1;
    for (long long i = tail - 22; i >= 0; i--)
        if (le32(t + i) == 0x06054b50) { eocd = i; break; }
    if (eocd < 0) { free(t); return fail(err, cap, "%s: not a complete zip (no end of central directory; truncated?)", path); }
    uint16_t entries = le16(t + eocd + 10);
    uint32_t cd_size = le32(t + eocd + 12), cd_off = le32(t + eocd + 16);
    free(t);
    if (cd_off == 0xffffffffu || entries == 0xffff) return fail(err, cap, "%s: ZIP64 archives are not supported yet", path);
    if ((long long)cd_off + cd_size > size) return fail(err, cap, "%s: central directory at %u+%u lies past the end (%lld bytes)", path, cd_off, cd_size, size);
    uint8_t *cd = malloc(cd_size ? cd_size : 1);
    if (!cd || read_at(f, cd_off, cd, cd_size)) { free(cd); return fail(err, cap, "%s: cannot read the central directory", path); }
    // the named member, and the first file (the answer when there is only one)
    typedef struct {
        long long at;  // local header offset; -1: none
        uint32_t crc, csize, usize;
        uint16_t method;
        char name[512];
    } Entry;
    Entry named = {.at = -1}, first = {.at = -1};
    int files = 0;
    for (uint32_t p = 0, e = 0; e < entries; e++) {
        if (p + 46 > cd_size || le32(cd + p) != 0x02014b50) { free(cd); return fail(err, cap, "%s: corrupt central directory entry %u", path, e); }
        uint16_t nlen = le16(cd + p + 28), xlen = le16(cd + p + 30), clen = le16(cd + p + 32);
        if (p + 46 + nlen + xlen + clen > cd_size) { free(cd); return fail(err, cap, "%s: central directory entry %u overruns", path, e); }
        char n[512];
        snprintf(n, sizeof(n), "%.*s", nlen, (const char *)cd + p + 46);
        int is_dir = nlen && n[nlen - 1] == '/';
        files += !is_dir;
        Entry *slot = is_dir ? NULL : member && !strcmp(n, member) ? &named : files == 1 ? &first : NULL;
        if (slot && slot->at < 0) {
            slot->at = le32(cd + p + 42);
            slot->crc = le32(cd + p + 16);
            slot->csize = le32(cd + p + 20);
            slot->usize = le32(cd + p + 24);
            slot->method = le16(cd + p + 10);
            snprintf(slot->name, sizeof(slot->name), "%s", n);
        }
        p += 46 + nlen + xlen + clen;
    }
    free(cd);
    if (named.at < 0 && member && !(or_only_file && files == 1))
        return fail(err, cap, "%s: no member '%s' in the zip", path, member);
    if (!member && files != 1) return fail(err, cap, "%s: the zip holds %d files; expected one", path, files);
    const Entry *e = named.at >= 0 ? &named : &first;
    long long found = e->at;
    uint32_t crc = e->crc, csize = e->csize, usize = e->usize;
    uint16_t method = e->method;
    const char *name = e->name;
    if (csize == 0xffffffffu || usize == 0xffffffffu) return fail(err, cap, "%s: ZIP64 member sizes are not supported yet", path);
    if (usize > limit) return fail(err, cap, "%s: member '%s' declares %u bytes, more than the limit %zu", path, name, usize, limit);
    uint8_t lh[30];
    if (found + 30 > size || read_at(f, found, lh, 30) || le32(lh) != 0x04034b50)
        return fail(err, cap, "%s: bad local header of '%s'", path, name);
    long long data_at = found + 30 + le16(lh + 26) + le16(lh + 28);
    if (data_at + csize > size) return fail(err, cap, "%s: member '%s' needs %u compressed bytes at %lld; the file has %lld (truncated)", path, name, csize, data_at, size);
    if (fseeko(f, data_at, SEEK_SET)) return fail(err, cap, "%s: seek failed", path);
    if (method == 0) {
        if (csize != usize) return fail(err, cap, "%s: stored member '%s' has sizes %u and %u", path, name, csize, usize);
        uint8_t *buf = malloc(usize ? usize : 1);
        if (!buf || fread(buf, 1, usize, f) != usize) { free(buf); return fail(err, cap, "%s: cannot read '%s'", path, name); }
        *data = buf;
        *len = usize;
    } else if (method == 8) {
        if (inflate_stream(f, csize, -15, data, len, usize, limit, path, err, cap)) return -1;
    } else {
        return fail(err, cap, "%s: member '%s' uses compression method %u; only stored and deflated are read", path, name, method);
    }
    uint32_t got = (uint32_t)crc32(0L, *data, (uInt)0);
    for (size_t done = 0; done < *len;) {
        size_t part = *len - done > (1u << 30) ? (1u << 30) : *len - done;
        got = (uint32_t)crc32(got, *data + done, (uInt)part);
        done += part;
    }
    if (got != crc) {
        free(*data);
        *data = NULL;
        return fail(err, cap, "%s: CRC mismatch in '%s' (stored %08x, computed %08x)", path, name, crc, got);
    }
    return 0;
}

int archive_read_all(const char *path, const char *member, int or_only_file, size_t limit,
                     uint8_t **data, size_t *len, int *kind, char *err, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, cap, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) { fclose(f); return fail(err, cap, "%s: not a regular file", path); }
    long long size = sb.st_size;
    uint8_t magic[4] = {0};
    size_t m = fread(magic, 1, 4, f);
    int rc;
    if (m == 4 && le32(magic) == 0x04034b50) {
        *kind = ARCHIVE_ZIP;
        rc = read_zip(f, size, path, member, or_only_file, limit, data, len, err, cap);
    } else if (m >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        *kind = ARCHIVE_GZIP;
        rewind(f);
        // zlib's gzip wrapper checks the trailer's CRC32 and length itself
        rc = inflate_stream(f, -1, 31, data, len, SIZE_MAX, limit, path, err, cap);
    } else {
        *kind = ARCHIVE_RAW;
        if ((unsigned long long)size > limit) rc = fail(err, cap, "%s: %lld bytes, more than the limit %zu", path, size, limit);
        else {
            uint8_t *buf = malloc(size ? (size_t)size : 1);
            rc = buf && read_at(f, 0, buf, (size_t)size) == 0 ? 0 : fail(err, cap, "%s: read error", path);
            if (rc) free(buf);
            else { *data = buf; *len = (size_t)size; }
        }
    }
    fclose(f);
    return rc;
}
