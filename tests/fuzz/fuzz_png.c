// fuzz_png.c: the PNG decoder (data/png.c) on one 64x64 image.
#include "../../data/png.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t rgb[64 * 64 * 3];
    char err[1024] = "";
    // a copy of exactly `size` bytes, so a read past the end is an ASan report
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    int rc = png_decode_rgb(copy, size, 64, 64, rgb, "fuzz.png", err, sizeof(err));
    fuzz_check_message(rc, err);
    free(copy);
    return 0;
}
