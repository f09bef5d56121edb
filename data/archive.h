// archive.h: whole-file readers through zlib for the archive formats datasets come in:
// a zip member (stored or deflated), a gzip stream, or a raw file, told apart by their
// magic bytes, never by the file name. Every length, offset and CRC is checked, and
// no size field is trusted for an allocation beyond `limit` bytes.
#ifndef REFORMER_ARCHIVE_H
#define REFORMER_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

enum { ARCHIVE_RAW = 0, ARCHIVE_GZIP = 1, ARCHIVE_ZIP = 2 };

// Reads the whole content of path into *data (*len bytes; free with free()).
// A zip must hold `member`, or exactly one file when member is NULL; with or_only_file
// a zip without `member` that holds exactly one file gives that file.
// Returns 0, or -1 with one line in err naming the file and what is wrong.
int archive_read_all(const char *path, const char *member, int or_only_file, size_t limit,
                     uint8_t **data, size_t *len, int *kind, char *err, size_t cap);

#endif
