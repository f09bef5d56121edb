// fuzz_archive.c: whole-file reads of a zip member, a gzip stream or a raw file
// (data/archive.c over data/zip.c and data/stream.c), as enwik8 is read.
#include "../../data/archive.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *out = NULL;
    size_t len;
    int kind;
    char err[1024] = "";
    int rc = archive_read_all(fuzz_file(data, size, "enwik8.zip"), "enwik8", 1, 16u << 20, &out, &len, &kind, err, sizeof(err));
    fuzz_check_message(rc, err);
    free(out);
    return 0;
}
