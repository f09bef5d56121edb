// safetensors.h: reading the safetensors format (8-byte little-endian header length,
// JSON header {name: {dtype, shape, data_offsets}}, raw data). Every offset and shape
// is checked against the file before any data is read.
#ifndef REFORMER_SAFETENSORS_H
#define REFORMER_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char path[1024];
    void *header;        // cJSON object of the tensors
    uint8_t *data;       // the data section
    size_t data_len;
} Safetensors;

int safetensors_open(Safetensors *st, const char *path, char *err, size_t cap);
void safetensors_close(Safetensors *st);

// Number of elements of `name` and its shape (up to 8 dims); -1 if absent.
long long safetensors_numel(const Safetensors *st, const char *name, int *ndim, long long shape[8]);
// Copies `name` as float32 into dst (F32, F16 and BF16 are converted); it must hold
// exactly `numel` elements. Returns 0 or -1 with err.
int safetensors_read_f32(const Safetensors *st, const char *name, float *dst, size_t numel, char *err, size_t cap);
// Copies an I64 or I32 tensor into int dst.
int safetensors_read_int(const Safetensors *st, const char *name, int *dst, size_t numel, char *err, size_t cap);
// Writes float32 tensors: names[i] with ndims[i] dims shapes[i] from data[i]. The file is
// written to path.tmp and renamed. Returns 0 or -1 with err.
int safetensors_write_f32(const char *path, int n, const char *const *names, const int *ndims,
                          const int (*shapes)[3], const float *const *data, char *err, size_t cap);

// Calls fn for every tensor name in the file.
void safetensors_names(const Safetensors *st, void (*fn)(void *ctx, const char *name), void *ctx);

#endif
