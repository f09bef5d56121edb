// fuzz_tar.c: tar headers (data/tar.c): every member listed.
#include "../../data/tar.h"
#include "fuzz.h"

static int count(void *ctx, const char *name, uint64_t offset, uint64_t len) {
    (void)name, (void)offset, (void)len;
    return ++*(int *)ctx > 100000 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fmemopen((void *)data, size ? size : 1, "rb");
    int n = 0;
    char err[1024] = "";
    int rc = tar_walk(f, (long long)size, "fuzz.tar", count, &n, err, sizeof(err));
    if (rc && n <= 100000) fuzz_check_message(rc, err);
    fclose(f);
    return 0;
}
