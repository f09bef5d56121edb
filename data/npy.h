// npy.h: the header of a NumPy .npy array (format versions 1.0, 2.0 and 3.0): magic,
// version, header length and the dict {'descr': ..., 'fortran_order': ..., 'shape': ...}.
#ifndef REFORMER_NPY_H
#define REFORMER_NPY_H

#include <stdint.h>

#include "stream.h"

#define NPY_MAX_DIMS 8

typedef struct {
    char descr[32];        // e.g. "|u1"
    int fortran_order;
    int ndim;
    uint64_t shape[NPY_MAX_DIMS];
} NpyHeader;

// Reads the header from s, which is then at the first element. Returns 0 or -1.
int npy_read_header(Stream *s, NpyHeader *h);
// 1 when descr is one-byte unsigned ("|u1", "<u1", ">u1", "=u1" or "u1").
int npy_is_u8(const NpyHeader *h);

#endif
