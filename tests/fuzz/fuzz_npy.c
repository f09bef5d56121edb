// fuzz_npy.c: .npy headers (data/npy.c) read from a stream.
#include "../../data/npy.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fmemopen((void *)data, size ? size : 1, "rb");
    Stream s;
    char err[1024] = "";
    stream_file(&s, f, 0, (long long)size, "fuzz.npy", err, sizeof(err));
    NpyHeader h;
    int rc = npy_read_header(&s, &h);
    fuzz_check_message(rc, err);
    if (!rc) npy_is_u8(&h);
    fclose(f);
    return 0;
}
