// fuzz_imagenet.c: ImageNet 64x64 sources (data/imagenet.c): a zip of .npz members, an
// .npz (.npy headers inside, data/npy.c) or a tar of PNG files (data/tar.c, data/png.c),
// listed, then every image read (at most 64).
#include "../../data/imagenet.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ImageSet s;
    char err[1024] = "";
    int rc = imageset_open(&s, fuzz_file(data, size, "images"), 4, 1, err, sizeof(err));
    fuzz_check_message(rc, err);
    if (rc) return 0;
    uint8_t img[IMAGE_BYTES];
    for (uint64_t k = 0; k < s.total && k < 64; k++) {
        err[0] = '\0';
        rc = imageset_read(&s, k, img, err, sizeof(err));
        fuzz_check_message(rc, err);
        if (rc) break;
    }
    for (uint64_t k = 0; !rc && k < s.total && k < 8; k++) {
        err[0] = '\0';
        rc = imageset_train_image(&s, k, img, err, sizeof(err));
        fuzz_check_message(rc, err);
    }
    imageset_close(&s);
    return 0;
}
