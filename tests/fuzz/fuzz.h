// fuzz.h: what the libFuzzer harnesses share (make fuzz builds one binary per reader).
// Readers that take a path get the input written to a file of this process's own.
#ifndef REFORMER_FUZZ_H
#define REFORMER_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// The input as the file DIR/name in a directory of this process's own; returns its path.
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *name) {
    static char dir[256], path[512];
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/reformer-fuzz-%ld", tmp && tmp[0] ? tmp : "/tmp", (long)getpid());
        mkdir(dir, 0700);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
    return path;
}

// The directory fuzz_file writes into (for readers that take a directory).
static inline const char *fuzz_dir(void) {
    static char dir[512];
    const char *any = fuzz_file((const uint8_t *)"", 0, ".probe");
    snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(any, '/') - any), any);
    return dir;
}

// Every harness checks that a failure left a one-line message.
static inline void fuzz_check_message(int rc, const char *err) {
    if (rc && (!err[0] || strchr(err, '\n'))) {
        fprintf(stderr, "error message is empty or not one line: '%s'\n", err);
        abort();
    }
}

#endif
