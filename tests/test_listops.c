// test_listops.c: scripts/listops.py's files read back, every label equal to the value of its
// expression; and the reader's one-line errors on bad files.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/listops.h"
#include "test.h"

void test_listops_generated_files_agree(void) {
    char dir[] = "/tmp/reformer-listops-XXXXXX", out[4096], path[600], err[512] = "";
    if (!mkdtemp(dir)) abort();
    int rc = run_cmd(out, sizeof(out), "python3 scripts/listops.py --out %s --seed 3 --train 40 --valid 10 --test 10"
                     " --min-length 20 --max-length 300", dir);
    EXPECT(rc == 0, "listops.py: %s", out);
    const char *names[3] = {"train", "val", "test"};
    size_t want[3] = {40, 10, 10};
    int ops[4] = {0};  // each operator appears somewhere
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof(path), "%s/basic_%s.tsv", dir, names[k]);
        ListopsSet s;
        EXPECT(listops_read(&s, path, 300, err, sizeof(err)) == 0, "%s", err);
        EXPECT(s.count == want[k], "%s: %zu expressions, want %zu", path, s.count, want[k]);
        for (size_t i = 0; i < s.count; i++) {
            const int *ids = s.ids + s.start[i];
            EXPECT(s.len[i] > 20 && s.len[i] < 300, "%s: expression %zu has %d tokens", path, i, s.len[i]);
            EXPECT(listops_value(ids, s.len[i]) == s.label[i], "%s: expression %zu is worth %d, labelled %d", path, i,
                   listops_value(ids, s.len[i]), s.label[i]);
            for (int t = 0; t < s.len[i]; t++)
                if (ids[t] >= 11 && ids[t] <= 14) ops[ids[t] - 11] = 1;
        }
        listops_free(&s);
    }
    EXPECT(ops[0] && ops[1] && ops[2] && ops[3], "an operator never appears: %d %d %d %d", ops[0], ops[1], ops[2], ops[3]);
    // the same seed, the same files
    rc = run_cmd(out, sizeof(out), "python3 scripts/listops.py --out %s/again --seed 3 --train 40 --valid 10 --test 10"
                 " --min-length 20 --max-length 300 >/dev/null && cmp %s/basic_test.tsv %s/again/basic_test.tsv", dir, dir, dir);
    EXPECT(rc == 0, "another run with the same seed differs: %s", out);
    run_cmd(NULL, 0, "rm -rf %s", dir);
}

// One bad file: its text, the reader's max_len, and what the one-line error must say.
static void bad(const char *text, int max_len, const char *needle) {
    char path[] = "/tmp/reformer-listops-bad-XXXXXX", err[512] = "";
    int fd = mkstemp(path);
    if (fd < 0) abort();
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    ListopsSet s;
    EXPECT(listops_read(&s, path, max_len, err, sizeof(err)) == -1 && strstr(err, needle) && strstr(err, path) &&
               !strchr(err, '\n'),
           "'%s': %s", needle, err);
    remove(path);
}

void test_listops_bad_files(void) {
    bad("( [MAX 1 2 ] )\t2\n", 100, ":1: expected the header");
    bad("Source\tTarget\n[MAX 1 2 ]\t10\n", 100, ":2: label '10' is not a class 0-9");
    bad("Source\tTarget\n[MAX 1 2 ]\t2\n[FOO 1 ]\t1\n", 100, ":3: token '[FOO' is not in ListOps' vocabulary");
    bad("Source\tTarget\n( )\t1\n", 100, ":2: empty sequence");
    bad("Source\tTarget\n[MAX 1 2 3 ]\t3\n", 4, ":2: more than 4 tokens");
    bad("Source\tTarget\n[MAX 1 2 ] 2\n", 100, ":2: expected 'source<TAB>label'");
    bad("Source\tTarget\n", 100, "no expressions");
    // and the values of a few expressions written out by hand
    int med[] = {13, 2, 6, 4, 8, 15};  // [MED 1 5 3 7 ] = (3 + 5) / 2
    int sm[] = {14, 10, 9, 15};         // [SM 9 8 ] = 17 mod 10
    int broken[] = {11, 2, 3};          // [MIN 1 2 without its ]
    EXPECT(listops_value(med, 6) == 4 && listops_value(sm, 4) == 7 && listops_value(broken, 3) == -1,
           "values: %d %d %d", listops_value(med, 6), listops_value(sm, 4), listops_value(broken, 3));
}
