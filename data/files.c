// files.c: regular input files opened without blocking; temporary output names.
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/file.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/common.h"

FILE *files_open(const char *path, long long *size, char *err, size_t cap) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        set_error(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        set_error(err, cap, "%s: not a regular file%s", path, S_ISDIR(sb.st_mode) ? " (a directory)" : "");
        close(fd);
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        set_error(err, cap, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (size) *size = sb.st_size;
    return f;
}

int files_read_all(const char *path, size_t limit, char **text, size_t *len, char *err, size_t cap) {
    long long size;
    FILE *f = files_open(path, &size, err, cap);
    if (!f) return -1;
    if ((unsigned long long)size > limit) {
        fclose(f);
        return set_error(err, cap, "%s: %lld bytes, more than the %zu this file may hold", path, size, limit);
    }
    char *buf = malloc((size_t)size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)size, f) : 0;
    // a file that grew while we read is cut at the size it had; one that shrank is an error
    int bad = !buf || got != (size_t)size || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return set_error(err, cap, "%s: read error", path);
    }
    buf[got] = '\0';
    *text = buf;
    if (len) *len = got;
    return 0;
}

int files_create(AtomicFile *a, const char *path, char *err, size_t cap) {
    a->f = NULL;
    if (snprintf(a->path, sizeof(a->path), "%s", path) >= (int)sizeof(a->path) ||
        snprintf(a->tmp, sizeof(a->tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(a->tmp))
        return set_error(err, cap, "%s: path too long", path);
    a->f = fopen(a->tmp, "wb");
    if (!a->f) return set_error(err, cap, "%s: cannot write: %s", a->tmp, strerror(errno));
    return 0;
}

int files_commit(AtomicFile *a, int failed, char *err, size_t cap) {
    int e = failed ? errno : 0;  // why the caller's last write failed
    if (!failed && (ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)) failed = 1, e = errno;
    if (fclose(a->f) != 0 && !failed) failed = 1, e = errno;
    a->f = NULL;
    if (!failed && rename(a->tmp, a->path) != 0) failed = 1, e = errno;
    if (failed) {
        unlink(a->tmp);
        return set_error(err, cap, "%s: write failed%s%s", a->path, e ? ": " : "", e ? strerror(e) : "");
    }
    char dir[4096];  // the rename itself survives a crash once the directory is on disk
    snprintf(dir, sizeof(dir), "%s", a->path);
    int dfd = open(dirname(dir), O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int files_lock_dir(const char *dir, char *err, size_t cap) {
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/.lock", dir) >= (int)sizeof(path)) return set_error(err, cap, "%s: path too long", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return set_error(err, cap, "%s: cannot create: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return set_error(err, cap, "%s: another run (process %s) is writing here; wait for it or give another --out",
                             dir, pid[0] ? pid : "?");
        return set_error(err, cap, "%s: cannot lock: %s", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        close(fd);
        return set_error(err, cap, "%s: cannot write: %s", path, strerror(errno));
    }
    return fd;
}

int files_write_text(const char *path, const char *text, char *err, size_t cap) {
    AtomicFile a;
    if (files_create(&a, path, err, cap)) return -1;
    size_t n = strlen(text);
    return files_commit(&a, fwrite(text, 1, n, a.f) != n, err, cap);
}
