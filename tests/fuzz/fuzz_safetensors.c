// fuzz_safetensors.c: the safetensors reader (cmd/safetensors.c): every tensor read as floats.
#include "../../cmd/safetensors.h"
#include "fuzz.h"

typedef struct {
    const Safetensors *st;
} Ctx;

static void read_one(void *ctx, const char *name) {
    const Safetensors *st = ((Ctx *)ctx)->st;
    int nd;
    long long shape[8];
    long long n = safetensors_numel(st, name, &nd, shape);
    if (n < 0 || n > (1 << 20)) return;
    float *dst = malloc((size_t)n * sizeof(float) + 1);
    char err[1024] = "";
    int rc = safetensors_read_f32(st, name, dst, (size_t)n, err, sizeof(err));
    fuzz_check_message(rc, err);
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Safetensors st;
    char err[1024] = "";
    int rc = safetensors_open(&st, fuzz_file(data, size, "model.safetensors"), err, sizeof(err));
    fuzz_check_message(rc, err);
    if (rc) return 0;
    Ctx ctx = {&st};
    safetensors_names(&st, read_one, &ctx);
    safetensors_close(&st);
    return 0;
}
