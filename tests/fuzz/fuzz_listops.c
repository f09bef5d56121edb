// fuzz_listops.c: LRA's ListOps TSV files (data/listops.c) and the value of what they hold.
#include "../../data/listops.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, "basic_test.tsv");
    ListopsSet s;
    char err[1024] = "";
    int rc = listops_read(&s, path, 2000, err, sizeof(err));
    fuzz_check_message(rc, err);
    for (size_t i = 0; rc == 0 && i < s.count; i++) {
        int v = listops_value(s.ids + s.start[i], s.len[i]);
        if (v < -1 || v > 9 || s.label[i] < 0 || s.label[i] > 9) abort();
    }
    if (rc == 0) listops_free(&s);
    return 0;
}
