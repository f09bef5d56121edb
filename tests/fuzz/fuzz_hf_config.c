// fuzz_hf_config.c: HuggingFace's config.json (cmd/hf_model.c) and reformer.json.
#include "../../cmd/hf_model.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file(data, size, "config.json");
    fuzz_file(data, size, "reformer.json");
    ReformerConfig c;
    int max_len, offset;
    char err[1024] = "";
    int rc = hf_read_config(fuzz_dir(), &c, &max_len, NULL, err, sizeof(err));
    fuzz_check_message(rc, err);
    err[0] = '\0';
    rc = hf_read_token_offset(fuzz_dir(), &offset, err, sizeof(err));
    fuzz_check_message(rc, err);
    return 0;
}
