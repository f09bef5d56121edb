// stream.c: file ranges, stored and deflated zip members, gzip streams.
#include "stream.h"

#include "../core/common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_IN_BYTES (1 << 16)

int stream_fail(Stream *s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_error(s->err, s->cap, "%s: %s", s->name, msg);
    return -1;
}

void stream_file(Stream *s, FILE *f, long long off, long long len, const char *name, char *err, size_t cap) {
    memset(s, 0, sizeof(*s));
    s->mode = STREAM_FILE;
    s->f = f;
    s->pos = off;
    s->left = len;
    s->usize = (uint64_t)len;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->err = err;
    s->cap = cap;
}

static int member_init(Stream *s, Stream *src, int mode, const char *name) {
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    s->src = src;
    s->err = src->err;
    s->cap = src->cap;
    snprintf(s->name, sizeof(s->name), "%.400s: %.190s", src->name, name);  // cut, never overflow
    if (mode == STREAM_STORED) return 0;
    s->in = malloc(STREAM_IN_BYTES);
    if (!s->in) return stream_fail(s, "out of memory");
    // raw deflate inside zip members; 31 = gzip header and trailer, checked by zlib
    if (inflateInit2(&s->z, mode == STREAM_GZIP ? 31 : -15) != Z_OK) {
        free(s->in);
        s->in = NULL;
        return stream_fail(s, "zlib init failed");
    }
    return 0;
}

int stream_member(Stream *s, Stream *src, int method, uint64_t csize, uint64_t usize, uint32_t crc,
                  const char *name) {
    if (method != 0 && method != 8) {
        member_init(s, src, STREAM_STORED, name);
        return stream_fail(s, "compression method %d; only stored (0) and deflated (8) are read", method);
    }
    if (member_init(s, src, method == 0 ? STREAM_STORED : STREAM_DEFLATE, name)) return -1;
    if (method == 0 && csize != usize) return stream_fail(s, "stored member with sizes %llu and %llu",
                                                          (unsigned long long)csize, (unsigned long long)usize);
    s->csize_left = csize;
    s->usize = usize;
    s->want_crc = crc;
    s->crc = (uint32_t)crc32(0L, NULL, 0);
    return 0;
}

int stream_gzip(Stream *s, Stream *src, const char *name) {
    if (member_init(s, src, STREAM_GZIP, name)) return -1;
    s->csize_left = UINT64_MAX;
    s->usize = UINT64_MAX;
    return 0;
}

static long long file_read(Stream *s, void *dst, size_t n) {
    if ((long long)n > s->left) n = (size_t)s->left;
    if (n == 0) return 0;
    if (fseeko(s->f, s->pos, SEEK_SET) || fread(dst, 1, n, s->f) != n)
        return stream_fail(s, "read error or file shorter than expected at byte %lld", s->pos);
    s->pos += (long long)n;
    s->left -= (long long)n;
    return (long long)n;
}

// Compressed input for the inflater, at most csize_left bytes from src.
static int refill(Stream *s) {
    size_t want = s->csize_left < STREAM_IN_BYTES ? (size_t)s->csize_left : STREAM_IN_BYTES;
    long long got = want ? stream_read_some(s->src, s->in, want) : 0;
    if (got < 0) return -1;
    if (got == 0) return stream_fail(s, "truncated: the compressed data ends early");
    if (s->csize_left != UINT64_MAX) s->csize_left -= (uint64_t)got;
    s->z.next_in = s->in;
    s->z.avail_in = (uInt)got;
    return 0;
}

// After a gzip member's end: another member follows (`cat a.gz b.gz`, which gunzip reads
// as one file) or the input ends; anything else is an error. Returns 1, 0 at the end, or -1.
static int gzip_next_member(Stream *s) {
    if (s->z.avail_in == 0) {
        long long got = stream_read_some(s->src, s->in, STREAM_IN_BYTES);
        if (got <= 0) return (int)got;
        s->z.next_in = s->in;
        s->z.avail_in = (uInt)got;
    }
    // zlib checks the rest of the next header (windowBits 31)
    if (s->z.next_in[0] != 0x1f) return stream_fail(s, "bytes after the end of the gzip data (not another member)");
    if (inflateReset(&s->z) != Z_OK) return stream_fail(s, "zlib reset failed");
    return 1;
}

// Inflates into dst (n > 0); returns bytes produced (0 only at the stream's end) or -1.
static long long inflate_some(Stream *s, uint8_t *dst, size_t n) {
    s->z.next_out = dst;
    s->z.avail_out = (uInt)(n > (1u << 30) ? (1u << 30) : n);
    uInt before = s->z.avail_out;
    while (s->z.avail_out == before && !s->ended) {
        if (s->z.avail_in == 0 && refill(s)) return -1;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            int more = s->mode == STREAM_GZIP ? gzip_next_member(s) : 0;
            if (more < 0) return -1;
            s->ended = !more;
        }
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return stream_fail(s, "corrupt compressed data (%s)", s->z.msg ? s->z.msg : "zlib error");
    }
    return (long long)(before - s->z.avail_out);
}

// At a member's declared end: the deflate stream must end here too, and the CRC agree.
static int check_end(Stream *s) {
    if (s->mode == STREAM_DEFLATE && !s->ended) {
        uint8_t extra;
        long long more = inflate_some(s, &extra, 1);
        if (more < 0) return -1;
        if (more > 0) return stream_fail(s, "inflates to more than the declared %llu bytes (zip bomb or corrupt size)",
                                         (unsigned long long)s->usize);
    }
    if (s->crc != s->want_crc)
        return stream_fail(s, "CRC mismatch (stored %08x, computed %08x)", s->want_crc, s->crc);
    return 0;
}

long long stream_read_some(Stream *s, void *dst, size_t n) {
    if (s->mode == STREAM_FILE) return file_read(s, dst, n);
    if (s->usize != UINT64_MAX && n > s->usize - s->done) n = (size_t)(s->usize - s->done);
    if (n == 0) return 0;
    long long got;
    if (s->mode == STREAM_STORED) {
        got = stream_read_some(s->src, dst, n);
        if (got == 0) return stream_fail(s, "truncated: %llu of %llu bytes", (unsigned long long)s->done,
                                         (unsigned long long)s->usize);
    } else {
        got = s->ended ? 0 : inflate_some(s, dst, n);
        if (got == 0 && s->mode == STREAM_DEFLATE)
            return stream_fail(s, "inflates to %llu bytes, the header declares %llu", (unsigned long long)s->done,
                               (unsigned long long)s->usize);
    }
    if (got <= 0) return got;
    if (s->mode != STREAM_GZIP) {
        for (long long at = 0; at < got;) {  // crc32 takes at most 4 GB per call
            uInt part = (uInt)(got - at > (1 << 30) ? (1 << 30) : got - at);
            s->crc = (uint32_t)crc32(s->crc, (const uint8_t *)dst + at, part);
            at += part;
        }
    }
    s->done += (uint64_t)got;
    if (s->done == s->usize && check_end(s)) return -1;
    return got;
}

int stream_read(Stream *s, void *dst, size_t n) {
    for (size_t have = 0; have < n;) {
        long long got = stream_read_some(s, (uint8_t *)dst + have, n - have);
        if (got < 0) return -1;
        if (got == 0) return stream_fail(s, "truncated: needed %zu more bytes after %llu", n - have,
                                         (unsigned long long)s->done);
        have += (size_t)got;
    }
    return 0;
}

int stream_skip(Stream *s, uint64_t n) {
    if (s->mode == STREAM_FILE) {
        if (n > (uint64_t)s->left) return stream_fail(s, "truncated: cannot skip %llu bytes", (unsigned long long)n);
        s->pos += (long long)n;
        s->left -= (long long)n;
        return 0;
    }
    uint8_t buf[1 << 14];
    while (n > 0) {
        size_t part = n > sizeof(buf) ? sizeof(buf) : (size_t)n;
        if (stream_read(s, buf, part)) return -1;
        n -= part;
    }
    return 0;
}

void stream_close(Stream *s) {
    if (s->in) inflateEnd(&s->z);
    free(s->in);
    s->in = NULL;
}
