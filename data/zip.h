// zip.h: the zip container (PKWARE APPNOTE 6.3): the central directory of a zip file,
// with ZIP64 (end of central directory record and locator, ZIP64 extra fields), and the
// local headers a reader meets when it walks members in order inside a stream, which is
// how an .npz nested in a deflated member of another zip is read.
#ifndef REFORMER_ZIP_H
#define REFORMER_ZIP_H

#include <stdint.h>
#include <stdio.h>

#include "stream.h"

typedef struct {
    char name[256];        // longer names are cut (and never match what we look for)
    int method, flags;
    uint64_t csize, usize, local_off;
    uint32_t crc;
} ZipEntry;

// Every entry of the zip file f (size bytes). Returns their count (*out: free()) or -1.
int zip_directory(FILE *f, long long size, const char *path, ZipEntry **out, char *err, size_t cap);
// Opens entry e of zip file f: range gets the file bytes, member reads them as e's content.
// On failure too, member may be passed to stream_close.
int zip_open_entry(Stream *range, Stream *member, FILE *f, long long size, const ZipEntry *e,
                   const char *path, char *err, size_t cap);
// The next local file header read from s (members walked in order). Returns 1 with *e
// filled and s at the member's data, 0 at the central directory (no more members), -1.
int zip_next_local(Stream *s, ZipEntry *e);

#endif
