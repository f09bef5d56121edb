// files.h: the files a user names. Inputs (configs, checkpoints, archives, prompts): only
// regular files are read: a FIFO, a device such as /dev/zero or a directory ends in
// one line naming the path, never a hang in open() or a read without end. The open itself
// does not block (O_NONBLOCK until the file is known to be regular).
#ifndef REFORMER_FILES_H
#define REFORMER_FILES_H

#include <stddef.h>
#include <stdio.h>

// Opens path for reading; *size gets its length (may be NULL). NULL with err on failure.
FILE *files_open(const char *path, long long *size, char *err, size_t cap);

// Reads the whole of path into a NUL-terminated buffer (*len bytes before the NUL; free()
// it). A file longer than limit bytes is refused before anything is allocated.
int files_read_all(const char *path, size_t limit, char **text, size_t *len, char *err, size_t cap);

// Every output (checkpoints, configs, metrics, safetensors, PNG, SVG) is replaced whole:
// written to PATH.tmp.PID (the process id keeps two writers of one path apart), flushed,
// fsynced, renamed over PATH and the directory fsynced, so readers and a crash see the old
// file or the whole new one.
typedef struct {
    FILE *f;             // write here between files_create and files_commit
    char path[4096], tmp[4120];
} AtomicFile;
// Opens the temporary file. Returns 0, or -1 with err (nothing is left behind).
int files_create(AtomicFile *a, const char *path, char *err, size_t cap);
// Ends the write: with failed == 0 (and no error on the stream) the file replaces path;
// otherwise, or when any step fails, the temporary is removed and path is untouched. The
// message gives errno's reason, so call it right after the write that failed.
// Returns 0, or -1 with err naming path.
int files_commit(AtomicFile *a, int failed, char *err, size_t cap);

// text to path, replaced whole as above. Returns 0 or -1 with err.
int files_write_text(const char *path, const char *text, char *err, size_t cap);

// Takes DIR/.lock for this process (flock, released when the process ends): two runs
// writing one output directory would overwrite each other's checkpoints. Returns the
// lock's descriptor, or -1 with err naming the process that holds it.
int files_lock_dir(const char *dir, char *err, size_t cap);

#endif
