// npy.c: .npy headers. The dict is Python literal syntax written by numpy; we read the
// three keys numpy always writes and reject anything we cannot account for.
#include "npy.h"

#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER 65536

static const char *skip_space(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    return p;
}

// The value after 'key': in the dict text, or NULL.
static const char *value_of(const char *dict, const char *key) {
    char quoted[40];
    for (int q = 0; q < 2; q++) {
        snprintf(quoted, sizeof(quoted), q ? "\"%s\"" : "'%s'", key);
        const char *k = strstr(dict, quoted);
        if (!k) continue;
        const char *p = skip_space(k + strlen(quoted));
        if (*p != ':') return NULL;
        return skip_space(p + 1);
    }
    return NULL;
}

int npy_read_header(Stream *s, NpyHeader *h) {
    memset(h, 0, sizeof(*h));
    uint8_t pre[12];
    if (stream_read(s, pre, 10)) return -1;
    if (memcmp(pre, "\x93NUMPY", 6)) return stream_fail(s, "not a .npy array (bad magic)");
    int major = pre[6];
    size_t hlen;
    if (major == 1) {
        hlen = pre[8] | pre[9] << 8;
    } else if (major == 2 || major == 3) {
        if (stream_read(s, pre + 10, 2)) return -1;
        hlen = pre[8] | pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        return stream_fail(s, ".npy format version %d.%d is not one we read (1.0, 2.0, 3.0)", major, pre[7]);
    }
    if (hlen == 0 || hlen > NPY_MAX_HEADER) return stream_fail(s, ".npy header length %zu is out of range", hlen);
    char *dict = malloc(hlen + 1);
    if (!dict) return stream_fail(s, "out of memory");
    if (stream_read(s, dict, hlen)) { free(dict); return -1; }
    dict[hlen] = '\0';
    int rc = 0;
    const char *d = value_of(dict, "descr"), *f = value_of(dict, "fortran_order"), *sh = value_of(dict, "shape");
    if (!d || !f || !sh) {
        rc = stream_fail(s, ".npy header lacks %s", !d ? "'descr'" : !f ? "'fortran_order'" : "'shape'");
    } else if (*d != '\'' && *d != '"') {
        rc = stream_fail(s, ".npy 'descr' is not a simple type string (structured arrays are not read)");
    } else {
        const char *end = strchr(d + 1, *d);
        size_t n = end ? (size_t)(end - d - 1) : 0;
        if (!end || n == 0 || n >= sizeof(h->descr)) rc = stream_fail(s, ".npy 'descr' is malformed");
        else memcpy(h->descr, d + 1, n);
    }
    if (!rc) {
        if (!strncmp(f, "False", 5)) h->fortran_order = 0;
        else if (!strncmp(f, "True", 4)) h->fortran_order = 1;
        else rc = stream_fail(s, ".npy 'fortran_order' is neither True nor False");
    }
    if (!rc && *sh != '(') rc = stream_fail(s, ".npy 'shape' is not a tuple");
    for (const char *p = rc ? NULL : skip_space(sh + 1); p && *p != ')';) {
        char *e;
        unsigned long long v = strtoull(p, &e, 10);
        if (e == p || h->ndim == NPY_MAX_DIMS) { rc = stream_fail(s, ".npy 'shape' is malformed or has over %d dims", NPY_MAX_DIMS); break; }
        while (*e == 'L') e++;  // Python 2 longs
        h->shape[h->ndim++] = v;
        p = skip_space(e);
        if (*p == ',') p = skip_space(p + 1);
        else if (*p != ')') { rc = stream_fail(s, ".npy 'shape' is malformed"); break; }
    }
    free(dict);
    return rc;
}

int npy_is_u8(const NpyHeader *h) {
    const char *d = h->descr;
    if (*d == '|' || *d == '<' || *d == '>' || *d == '=') d++;
    return !strcmp(d, "u1");
}
