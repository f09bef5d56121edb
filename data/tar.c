// tar.c: tar headers (POSIX.1-1988 ustar, GNU long names, pax headers skipped).
#include "tar.h"

#include <string.h>

#include "../core/common.h"

int tar_is_header(const uint8_t *block) { return !memcmp(block + 257, "ustar", 5); }

// An octal field (NUL or space terminated); GNU base-256 for sizes over 8 GB. -1: malformed.
static long long octal(const uint8_t *p, int n) {
    if (p[0] & 0x80) {  // big-endian base 256 (positive only); more than 2^62 is not a size
        if (p[0] & 0x40) return -1;
        uint64_t v = p[0] & 0x3f;
        for (int i = 1; i < n; i++) {
            if (v >> 54) return -1;
            v = v << 8 | p[i];
        }
        return (long long)v;
    }
    long long v = 0;
    int i = 0, digits = 0;
    while (i < n && p[i] == ' ') i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++, digits++) v = v * 8 + (p[i] - '0');
    if (i < n && p[i] != '\0' && p[i] != ' ') return -1;
    return digits ? v : 0;
}

static int checksum_ok(const uint8_t *h) {
    long long want = octal(h + 148, 8), sum = 0;
    for (int i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? ' ' : h[i];
    return want >= 0 && sum == want;
}

int tar_walk(FILE *f, long long size, const char *path,
             int (*fn)(void *ctx, const char *name, uint64_t offset, uint64_t len), void *ctx, char *err,
             size_t cap) {
    uint8_t h[512];
    char longname[4096] = "";
    long long at = 0;
    for (;;) {
        if (at + 512 > size) return set_error(err, cap, "%s: truncated tar (no end marker after byte %lld)", path, at);
        if (fseeko(f, at, SEEK_SET) || fread(h, 1, 512, f) != 512) return set_error(err, cap, "%s: read error at %lld", path, at);
        int zero = 1;
        for (int i = 0; i < 512 && zero; i++) zero = h[i] == 0;
        if (zero) return 0;  // the end marker (a second zero block may follow)
        if (!checksum_ok(h)) return set_error(err, cap, "%s: tar header at byte %lld fails its checksum", path, at);
        long long len = octal(h + 124, 12);
        if (len < 0 || at + 512 + len > size)
            return set_error(err, cap, "%s: tar member at byte %lld declares %lld bytes; the file has %lld (truncated)",
                             path, at, len, size);
        char type = (char)h[156];
        uint64_t data = (uint64_t)at + 512;
        if (type == 'L') {  // GNU: the next member's long name
            size_t n = len < (long long)sizeof(longname) - 1 ? (size_t)len : sizeof(longname) - 1;
            if (fread(longname, 1, n, f) != n) return set_error(err, cap, "%s: read error at %lld", path, at);
            longname[n] = '\0';
        } else {
            if (type == '0' || type == '\0') {
                char name[4096];
                if (longname[0]) snprintf(name, sizeof(name), "%s", longname);
                else if (h[345]) snprintf(name, sizeof(name), "%.155s/%.100s", (const char *)h + 345, (const char *)h);
                else snprintf(name, sizeof(name), "%.100s", (const char *)h);
                if (fn(ctx, name, data, (uint64_t)len)) return -1;
            }
            longname[0] = '\0';  // directories, links, pax headers: nothing to read
        }
        at += 512 + (len + 511) / 512 * 512;
    }
}
