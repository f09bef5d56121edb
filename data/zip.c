// zip.c: central directory, ZIP64 and local headers.
#include "zip.h"

#include <stdlib.h>
#include <string.h>

#include "../core/common.h"

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int read_at(FILE *f, long long off, void *dst, size_t n) {
    return off >= 0 && fseeko(f, off, SEEK_SET) == 0 && fread(dst, 1, n, f) == n ? 0 : -1;
}

// The ZIP64 extended information extra field (id 1): a 64-bit value for each 32-bit
// field that holds 0xffffffff, in the order usize, csize, local header offset.
// Returns 0, or -1 when a value it must hold is missing.
static int zip64_extra(const uint8_t *x, size_t xlen, uint64_t *usize, uint64_t *csize, uint64_t *off) {
    for (size_t p = 0; p + 4 <= xlen;) {
        uint16_t id = le16(x + p), len = le16(x + p + 2);
        if (p + 4 + len > xlen) return -1;
        if (id == 1) {
            const uint8_t *v = x + p + 4;
            size_t at = 0;
            uint64_t *fields[3] = {usize, csize, off};
            for (int i = 0; i < 3; i++) {
                if (!fields[i] || *fields[i] != 0xffffffffu) continue;
                if (at + 8 > len) return -1;
                *fields[i] = le64(v + at);
                at += 8;
            }
            return 0;
        }
        p += 4 + (size_t)len;
    }
    return (usize && *usize == 0xffffffffu) || (csize && *csize == 0xffffffffu) || (off && *off == 0xffffffffu) ? -1 : 0;
}

int zip_directory(FILE *f, long long size, const char *path, ZipEntry **out, char *err, size_t cap) {
    // the end of central directory record sits in the last 22 + 65535 bytes
    long long tail = size < 65557 ? size : 65557;
    uint8_t *t = malloc(tail > 0 ? (size_t)tail : 1);
    if (!t || read_at(f, size - tail, t, (size_t)tail)) { free(t); return set_error(err, cap, "%s: cannot read the zip directory", path); }
    long long eocd = -1;
    for (long long i = tail - 22; i >= 0; i--)
        if (le32(t + i) == 0x06054b50) { eocd = i; break; }
    if (eocd < 0) { free(t); return set_error(err, cap, "%s: not a complete zip (no end of central directory; truncated?)", path); }
    uint64_t entries = le16(t + eocd + 10), cd_size = le32(t + eocd + 12), cd_off = le32(t + eocd + 16);
    long long eocd_at = size - tail + eocd;
    free(t);
    if (entries == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        // ZIP64: a locator just before the record points at the ZIP64 end record
        uint8_t loc[20], rec[56];
        if (eocd_at < 20 || read_at(f, eocd_at - 20, loc, 20) || le32(loc) != 0x07064b50)
            return set_error(err, cap, "%s: ZIP64 end of central directory locator missing", path);
        long long rec_at = (long long)le64(loc + 8);
        if (rec_at < 0 || rec_at + 56 > eocd_at || read_at(f, rec_at, rec, 56) || le32(rec) != 0x06064b50)
            return set_error(err, cap, "%s: bad ZIP64 end of central directory record", path);
        entries = le64(rec + 32);
        cd_size = le64(rec + 40);
        cd_off = le64(rec + 48);
    }
    if (cd_off > (uint64_t)size || cd_size > (uint64_t)size - cd_off)
        return set_error(err, cap, "%s: central directory at %llu+%llu lies past the end (%lld bytes)", path,
                    (unsigned long long)cd_off, (unsigned long long)cd_size, size);
    if (entries > cd_size / 46) return set_error(err, cap, "%s: %llu entries cannot fit a %llu-byte central directory", path,
                                            (unsigned long long)entries, (unsigned long long)cd_size);
    uint8_t *cd = malloc(cd_size ? (size_t)cd_size : 1);
    ZipEntry *e = calloc(entries ? (size_t)entries : 1, sizeof(ZipEntry));
    if (!cd || !e || read_at(f, (long long)cd_off, cd, (size_t)cd_size)) {
        free(cd);
        free(e);
        return set_error(err, cap, "%s: cannot read the central directory", path);
    }
    int rc = (int)entries;
    for (uint64_t p = 0, i = 0; i < entries; i++) {
        if (p + 46 > cd_size || le32(cd + p) != 0x02014b50) { rc = set_error(err, cap, "%s: corrupt central directory entry %llu", path, (unsigned long long)i); break; }
        uint16_t nlen = le16(cd + p + 28), xlen = le16(cd + p + 30), clen = le16(cd + p + 32);
        if (p + 46 + nlen + xlen + clen > cd_size) { rc = set_error(err, cap, "%s: central directory entry %llu overruns", path, (unsigned long long)i); break; }
        ZipEntry *z = &e[i];
        snprintf(z->name, sizeof(z->name), "%.*s", nlen < sizeof(z->name) ? (int)nlen : 0, (const char *)cd + p + 46);
        z->flags = le16(cd + p + 8);
        z->method = le16(cd + p + 10);
        z->crc = le32(cd + p + 16);
        z->csize = le32(cd + p + 20);
        z->usize = le32(cd + p + 24);
        z->local_off = le32(cd + p + 42);
        if (zip64_extra(cd + p + 46 + nlen, xlen, &z->usize, &z->csize, &z->local_off)) {
            rc = set_error(err, cap, "%s: entry '%s' lacks the ZIP64 sizes its header promises", path, z->name);
            break;
        }
        p += 46 + (uint64_t)nlen + xlen + clen;
    }
    free(cd);
    if (rc < 0) { free(e); return -1; }
    *out = e;
    return rc;
}

int zip_open_entry(Stream *range, Stream *member, FILE *f, long long size, const ZipEntry *e,
                   const char *path, char *err, size_t cap) {
    // both streams are closable whatever happens below (stream_close on a zeroed stream is a no-op)
    memset(range, 0, sizeof(*range));
    memset(member, 0, sizeof(*member));
    uint8_t lh[30];
    if (e->local_off + 30 > (uint64_t)size || read_at(f, (long long)e->local_off, lh, 30) || le32(lh) != 0x04034b50)
        return set_error(err, cap, "%s: bad local header of '%s'", path, e->name);
    uint64_t data_at = e->local_off + 30 + le16(lh + 26) + le16(lh + 28);
    if (data_at > (uint64_t)size || e->csize > (uint64_t)size - data_at)
        return set_error(err, cap, "%s: member '%s' needs %llu compressed bytes at %llu; the file has %lld (truncated)", path,
                    e->name, (unsigned long long)e->csize, (unsigned long long)data_at, size);
    stream_file(range, f, (long long)data_at, (long long)e->csize, path, err, cap);
    return stream_member(member, range, e->method, e->csize, e->usize, e->crc, e->name);
}

int zip_next_local(Stream *s, ZipEntry *e) {
    uint8_t lh[30];
    if (stream_read(s, lh, 4)) return -1;
    uint32_t sig = le32(lh);
    if (sig == 0x02014b50 || sig == 0x06054b50) return 0;  // central directory: no more members
    if (sig != 0x04034b50) return stream_fail(s, "expected a zip local header, found %08x", sig);
    if (stream_read(s, lh + 4, 26)) return -1;
    memset(e, 0, sizeof(*e));
    e->flags = le16(lh + 6);
    e->method = le16(lh + 8);
    e->crc = le32(lh + 14);
    e->csize = le32(lh + 18);
    e->usize = le32(lh + 22);
    uint16_t nlen = le16(lh + 26), xlen = le16(lh + 28);
    uint8_t name[65536], extra[65536];
    if (stream_read(s, name, nlen) || stream_read(s, extra, xlen)) return -1;
    snprintf(e->name, sizeof(e->name), "%.*s", nlen < sizeof(e->name) ? (int)nlen : 0, (const char *)name);
    if (e->flags & 8)  // sizes and CRC follow the data: the member cannot be bounded in advance
        return stream_fail(s, "member '%s' was written as a stream (sizes after the data); rewrite the file with "
                              "numpy.savez", e->name);
    if (zip64_extra(extra, xlen, &e->usize, &e->csize, NULL))
        return stream_fail(s, "member '%s' lacks the ZIP64 sizes its header promises", e->name);
    return 1;
}
