// stream.h: sequential readers that stack: a byte range of a file at the bottom, and on
// top of any stream a zip member (stored or deflated) or a gzip stream. That is how an
// .npy inside an .npz inside a .zip is read in one pass without unpacking anything.
// Each layer checks what its format promises: a member yields exactly its declared size
// (more is a zip bomb, less is truncation) and its CRC32 is checked at its last byte;
// zlib checks a gzip trailer itself.
#ifndef REFORMER_STREAM_H
#define REFORMER_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

enum { STREAM_FILE = 0, STREAM_STORED = 1, STREAM_DEFLATE = 2, STREAM_GZIP = 3 };

typedef struct Stream Stream;
struct Stream {
    int mode;
    FILE *f;               // STREAM_FILE: `left` bytes from file offset `pos`
    long long pos, left;
    Stream *src;           // members: where the compressed bytes come from
    uint64_t csize_left;   // compressed bytes not yet taken from src
    uint64_t usize, done;  // declared size (UINT64_MAX: up to the end), bytes produced
    uint32_t crc, want_crc;
    int ended;             // the deflate stream's end was seen
    z_stream z;
    uint8_t *in;           // (STREAM_IN_BYTES) the inflater's input
    char name[600];        // for messages, e.g. "train.zip: batch_1.npz: data.npy"
    char *err;
    size_t cap;
};

// A byte range of an open file. Returns 0 (never fails; reads report errors).
void stream_file(Stream *s, FILE *f, long long off, long long len, const char *name, char *err, size_t cap);
// A member on top of src: method 0 (stored) or 8 (deflated) with its sizes and CRC, or
// STREAM_GZIP-style input when gzip is set (sizes then unknown). Returns 0 or -1.
int stream_member(Stream *s, Stream *src, int method, uint64_t csize, uint64_t usize, uint32_t crc,
                  const char *name);
int stream_gzip(Stream *s, Stream *src, const char *name);
// Up to n bytes into dst: the count, 0 at the end, or -1 with the error written.
long long stream_read_some(Stream *s, void *dst, size_t n);
// Exactly n bytes, or -1 ("truncated" when the stream ends first).
int stream_read(Stream *s, void *dst, size_t n);
int stream_skip(Stream *s, uint64_t n);
void stream_close(Stream *s);
// Writes "<name>: <message>" into the stream's error buffer and returns -1.
int stream_fail(Stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
