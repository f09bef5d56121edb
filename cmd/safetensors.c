// safetensors.c: the whole file is read into memory (model directories are small next
// to the memory that trains them); the header is parsed with cJSON.
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "../data/files.h"

#define MAX_HEADER (100u << 20)

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// A name the header gives two entries (cJSON keeps both; lookups would see only the first), or NULL.
static const char *repeated_name(const cJSON *header) {
    int n = cJSON_GetArraySize(header);
    const char **names = malloc((n ? n : 1) * sizeof(char *)), *twice = NULL;
    if (!names) return NULL;
    int k = 0;
    for (const cJSON *e = header->child; e; e = e->next) names[k++] = e->string;
    qsort(names, k, sizeof(char *), cmp_name);
    for (int i = 1; i < k && !twice; i++)
        if (!strcmp(names[i - 1], names[i])) twice = names[i];
    free(names);
    return twice;
}

int safetensors_open(Safetensors *st, const char *path, char *err, size_t cap) {
    memset(st, 0, sizeof(*st));
    snprintf(st->path, sizeof(st->path), "%s", path);
    long long size;
    FILE *f = files_open(path, &size, err, cap);
    if (!f) return -1;
    uint8_t len8[8];
    if (size < 8 || fread(len8, 1, 8, f) != 8) {
        fclose(f);
        return set_error(err, cap, "%s: truncated safetensors file", path);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    if (hlen > MAX_HEADER || 8 + hlen > (uint64_t)size) {
        fclose(f);
        return set_error(err, cap, "%s: header of %llu bytes does not fit in the file's %lld", path,
                         (unsigned long long)hlen, size);
    }
    char *text = malloc(hlen + 1);
    st->data_len = (size_t)(size - 8 - (long long)hlen);
    st->data = malloc(st->data_len ? st->data_len : 1);
    int bad = !text || !st->data || fread(text, 1, hlen, f) != hlen || fread(st->data, 1, st->data_len, f) != st->data_len;
    fclose(f);
    if (bad) {
        free(text);
        safetensors_close(st);
        return set_error(err, cap, "%s: read error", path);
    }
    text[hlen] = '\0';
    st->header = strlen(text) == hlen ? cJSON_ParseWithOpts(text, NULL, 1) : NULL;  // no NUL inside, nothing after
    free(text);
    if (!st->header || !cJSON_IsObject((cJSON *)st->header)) {
        safetensors_close(st);
        return set_error(err, cap, "%s: header is not a JSON object", path);
    }
    const char *twice = repeated_name(st->header);
    if (twice) {
        set_error(err, cap, "%s: tensor '%s' appears twice in the header", path, twice);
        safetensors_close(st);
        return -1;
    }
    return 0;
}

void safetensors_close(Safetensors *st) {
    cJSON_Delete(st->header);
    free(st->data);
    st->header = NULL;
    st->data = NULL;
}

static const cJSON *entry(const Safetensors *st, const char *name) {
    return cJSON_GetObjectItemCaseSensitive((const cJSON *)st->header, name);
}

long long safetensors_numel(const Safetensors *st, const char *name, int *ndim, long long shape[8]) {
    const cJSON *e = entry(st, name), *s = cJSON_GetObjectItem(e, "shape");
    if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) > 8) return -1;
    long long n = 1;
    *ndim = cJSON_GetArraySize(s);
    for (int i = 0; i < *ndim; i++) {
        const cJSON *d = cJSON_GetArrayItem(s, i);
        // whole, and small enough that the product of all dims cannot overflow
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > (double)(1LL << 40) ||
            d->valuedouble != floor(d->valuedouble))
            return -1;
        shape[i] = (long long)d->valuedouble;
        if (shape[i] && n > (1LL << 50) / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

// Checks dtype, element count and offsets; returns the bytes of the tensor or NULL.
static const uint8_t *locate(const Safetensors *st, const char *name, size_t numel, const char **dtype,
                             size_t *elem, char *err, size_t cap) {
    const cJSON *e = entry(st, name);
    if (!e) { set_error(err, cap, "%s: no tensor '%s'", st->path, name); return NULL; }
    const cJSON *dt = cJSON_GetObjectItem(e, "dtype"), *off = cJSON_GetObjectItem(e, "data_offsets");
    int nd;
    long long shape[8];
    long long n = safetensors_numel(st, name, &nd, shape);
    if (!cJSON_IsString(dt) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || n < 0) {
        set_error(err, cap, "%s: tensor '%s' has a malformed entry", st->path, name);
        return NULL;
    }
    *dtype = dt->valuestring;
    *elem = !strcmp(*dtype, "F32") || !strcmp(*dtype, "I32") ? 4 : !strcmp(*dtype, "I64") ? 8
          : !strcmp(*dtype, "F16") || !strcmp(*dtype, "BF16") ? 2 : 0;
    if (!*elem) { set_error(err, cap, "%s: tensor '%s' has unsupported dtype %s", st->path, name, *dtype); return NULL; }
    if ((size_t)n != numel) { set_error(err, cap, "%s: tensor '%s' has %lld elements, expected %zu", st->path, name, n, numel); return NULL; }
    double a = cJSON_GetArrayItem(off, 0)->valuedouble, b = cJSON_GetArrayItem(off, 1)->valuedouble;
    if (a != floor(a) || b != floor(b)) {
        set_error(err, cap, "%s: tensor '%s' offsets [%g, %g) are not whole bytes", st->path, name, a, b);
        return NULL;
    }
    if (a < 0 || b < a || b > (double)st->data_len || (size_t)(b - a) != numel * *elem) {
        set_error(err, cap, "%s: tensor '%s' offsets [%.0f, %.0f) do not hold %zu x %zu bytes within %zu",
                  st->path, name, a, b, numel, *elem, st->data_len);
        return NULL;
    }
    return st->data + (size_t)a;
}

int safetensors_read_f32(const Safetensors *st, const char *name, float *dst, size_t numel, char *err, size_t cap) {
    const char *dtype;
    size_t elem;
    const uint8_t *p = locate(st, name, numel, &dtype, &elem, err, cap);
    if (!p) return -1;
    for (size_t i = 0; i < numel; i++) {
        uint32_t bits;
        if (!strcmp(dtype, "F32")) memcpy(&bits, p + 4 * i, 4);
        else if (!strcmp(dtype, "BF16")) bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
        else if (!strcmp(dtype, "F16")) {
            uint32_t h = p[2 * i] | p[2 * i + 1] << 8, sign = (h & 0x8000) << 16, ex = (h >> 10) & 31, man = h & 1023;
            if (ex == 0 && man == 0) bits = sign;
            else if (ex == 0) {  // subnormal half: normalise
                int e = -1;
                do { man <<= 1; e++; } while (!(man & 1024));
                bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 1023) << 13;
            } else if (ex == 31) bits = sign | 0x7f800000u | man << 13;
            else bits = sign | (ex + 112) << 23 | man << 13;
        } else return set_error(err, cap, "%s: tensor '%s' is %s, not a float type", st->path, name, dtype);
        memcpy(dst + i, &bits, 4);
    }
    return 0;
}

int safetensors_read_int(const Safetensors *st, const char *name, int *dst, size_t numel, char *err, size_t cap) {
    const char *dtype;
    size_t elem;
    const uint8_t *p = locate(st, name, numel, &dtype, &elem, err, cap);
    if (!p) return -1;
    for (size_t i = 0; i < numel; i++) {
        long long v;
        if (!strcmp(dtype, "I64")) { int64_t x; memcpy(&x, p + 8 * i, 8); v = x; }
        else if (!strcmp(dtype, "I32")) { int32_t x; memcpy(&x, p + 4 * i, 4); v = x; }
        else return set_error(err, cap, "%s: tensor '%s' is %s, not an integer type", st->path, name, dtype);
        if (v < 0 || v > (1LL << 30)) return set_error(err, cap, "%s: tensor '%s' holds %lld", st->path, name, v);
        dst[i] = (int)v;
    }
    return 0;
}

void safetensors_names(const Safetensors *st, void (*fn)(void *ctx, const char *name), void *ctx) {
    for (const cJSON *e = ((const cJSON *)st->header)->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__")) fn(ctx, e->string);
}

int safetensors_write_f32(const char *path, int n, const char *const *names, const int *ndims,
                          const int (*shapes)[3], const float *const *data, char *err, size_t cap) {
    cJSON *h = cJSON_CreateObject();
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        cJSON *t = cJSON_AddObjectToObject(h, names[i]), *shape = cJSON_AddArrayToObject(t, "shape");
        cJSON_AddStringToObject(t, "dtype", "F32");
        for (int d = 0; d < ndims[i]; d++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber(shapes[i][d]));
            numel *= (size_t)shapes[i][d];
        }
        cJSON *off = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(offset + 4 * numel)));
        offset += 4 * numel;
    }
    char *text = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;  // data starts 8-byte aligned
    AtomicFile a;
    if (files_create(&a, path, err, cap)) {
        free(text);
        return -1;
    }
    FILE *f = a.f;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int bad = fwrite(len8, 1, 8, f) != 8 || fwrite(text, 1, hlen, f) != hlen;
    for (size_t i = hlen; !bad && i < padded; i++) bad = fputc(' ', f) == EOF;
    for (int i = 0; !bad && i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < ndims[i]; d++) numel *= (size_t)shapes[i][d];
        bad = fwrite(data[i], 4, numel, f) != numel;
    }
    free(text);
    if (files_commit(&a, bad, err, cap)) return -1;
    return 0;
}
