// archive.c: whole-file reads of a zip member (data/zip.c), a gzip stream (RFC 1952,
// through zlib's gzip wrapper) or a raw file, all through data/stream.c.
#include "archive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/common.h"
#include "files.h"
#include "stream.h"
#include "zip.h"

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static int read_at(FILE *f, long long off, void *dst, size_t n) {
    return fseeko(f, off, SEEK_SET) == 0 && fread(dst, 1, n, f) == n ? 0 : -1;
}

// Reads all of s into a buffer: exactly `expect` bytes when known, else growing to limit.
static int read_all(Stream *s, uint64_t expect, size_t limit, uint8_t **data, size_t *len) {
    if (expect != UINT64_MAX && expect > limit)
        return stream_fail(s, "declares %llu bytes, more than the limit %zu", (unsigned long long)expect, limit);
    size_t room = expect != UINT64_MAX ? (size_t)expect : (1u << 20), have = 0;
    uint8_t *buf = malloc(room ? room : 1);
    for (;;) {
        if (!buf) return stream_fail(s, "out of memory");
        if (have == room && expect == UINT64_MAX) {
            if (room >= limit) { free(buf); return stream_fail(s, "inflates to more than %zu bytes", limit); }
            room = room * 2 > limit ? limit : room * 2;
            uint8_t *grown = realloc(buf, room);
            if (!grown) free(buf);
            buf = grown;
            continue;
        }
        long long got = have < room ? stream_read_some(s, buf + have, room - have) : 0;
        if (got < 0) { free(buf); return -1; }
        if (got == 0) break;
        have += (size_t)got;
    }
    *data = buf;
    *len = have;
    return 0;
}

static int read_zip(FILE *f, long long size, const char *path, const char *member, int or_only_file,
                    size_t limit, uint8_t **data, size_t *len, char *err, size_t cap) {
    ZipEntry *all;
    int n = zip_directory(f, size, path, &all, err, cap);
    if (n < 0) return -1;
    // the named member, and the first file (the answer when there is only one)
    int named = -1, first = -1, files = 0;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(all[i].name);
        if (nl && all[i].name[nl - 1] == '/') continue;  // a directory
        files++;
        if (first < 0) first = i;
        if (member && named < 0 && !strcmp(all[i].name, member)) named = i;
    }
    int rc = -1;
    if (named < 0 && member && !(or_only_file && files == 1))
        set_error(err, cap, "%s: no member '%s' in the zip", path, member);
    else if (!member && files != 1)
        set_error(err, cap, "%s: the zip holds %d files; expected one", path, files);
    else {
        Stream range, body;
        const ZipEntry *e = &all[named >= 0 ? named : first];
        if (zip_open_entry(&range, &body, f, size, e, path, err, cap) == 0)
            rc = read_all(&body, e->usize, limit, data, len);
        stream_close(&body);
    }
    free(all);
    return rc;
}

int archive_read_all(const char *path, const char *member, int or_only_file, size_t limit,
                     uint8_t **data, size_t *len, int *kind, char *err, size_t cap) {
    long long size;
    FILE *f = files_open(path, &size, err, cap);
    if (!f) return -1;
    uint8_t magic[4] = {0};
    size_t m = fread(magic, 1, 4, f);
    int rc;
    if (m == 4 && le32(magic) == 0x04034b50) {
        *kind = ARCHIVE_ZIP;
        rc = read_zip(f, size, path, member, or_only_file, limit, data, len, err, cap);
    } else if (m >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        *kind = ARCHIVE_GZIP;
        // zlib's gzip wrapper checks the trailer's CRC32 and length itself
        Stream range, body;
        stream_file(&range, f, 0, size, path, err, cap);
        rc = stream_gzip(&body, &range, "gzip") ? -1 : read_all(&body, UINT64_MAX, limit, data, len);
        stream_close(&body);
    } else {
        *kind = ARCHIVE_RAW;
        if ((unsigned long long)size > limit) rc = set_error(err, cap, "%s: %lld bytes, more than the limit %zu", path, size, limit);
        else {
            uint8_t *buf = malloc(size ? (size_t)size : 1);
            rc = buf && read_at(f, 0, buf, (size_t)size) == 0 ? 0 : set_error(err, cap, "%s: read error", path);
            if (rc) free(buf);
            else { *data = buf; *len = (size_t)size; }
        }
    }
    fclose(f);
    return rc;
}
