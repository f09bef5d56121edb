// test_mpi.c: data-parallel training under mpirun (a build with make MPI=1): N ranks against
// one process with the same global batch, ZeRO-1 on against off, resume under the same and
// another rank count, and a rank that cannot read its data.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "test.h"

// As root (CI) Open MPI needs --allow-run-as-root; --oversubscribe lets 3 ranks share 2
// cores; containers often forbid the ptrace that shared-memory single copy uses.
#define MPIRUN "mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none"

static char dir[256];

// The copy task, and an enwik8-kind model of this repository's own text (README and core/,
// about 180 KB: split 90/5/5 by proportion), both with batch 6 so 1, 2 and 3 ranks share it.
static const char *COPY =
    "{\"model\": {\"vocab\": 8, \"d_model\": 64, \"d_ff\": 128, \"n_heads\": 2, \"d_head\": 32,"
    " \"attn_layers\": [\"lsh\"], \"n_hashes\": 4, \"n_buckets\": 4, \"lsh_chunk\": 16, \"axial_shape\": [1, 64],"
    " \"axial_dims\": [16, 48], \"activation\": \"relu\", \"hidden_dropout\": 0.05, \"lsh_dropout\": 0.05},"
    " \"data\": {\"kind\": \"copy\", \"seq_len\": 64},"
    " \"train\": {\"batch\": 6, \"steps\": 20, \"lr\": 0.001, \"warmup\": 10, \"schedule\": \"constant\","
    " \"eval_every\": 10, \"save_every\": 10, \"log_every\": 1, \"seed\": 3, \"threads\": 1}}";
static const char *TEXT =
    "{\"model\": {\"vocab\": 256, \"d_model\": 64, \"d_ff\": 128, \"n_heads\": 2, \"d_head\": 32,"
    " \"attn_layers\": [\"local\", \"lsh\"], \"n_hashes\": 2, \"n_buckets\": 4, \"lsh_chunk\": 32, \"local_chunk\": 32,"
    " \"axial_shape\": [8, 16], \"axial_dims\": [16, 48], \"activation\": \"relu\"},"
    " \"data\": {\"kind\": \"enwik8\", \"seq_len\": 128},"
    " \"train\": {\"batch\": 6, \"steps\": 20, \"lr\": 0.001, \"warmup\": 10, \"schedule\": \"constant\","
    " \"eval_every\": 10, \"eval_tokens\": 4096, \"save_every\": 10, \"log_every\": 1, \"seed\": 1, \"threads\": 1}}";

static void setup(void) {
    snprintf(dir, sizeof(dir), "/tmp/reformer-mpi-XXXXXX");
    if (!mkdtemp(dir)) abort();
    char path[512], out[1024];
    snprintf(path, sizeof(path), "%s/copy.json", dir);
    write_text_file(path, COPY);
    snprintf(path, sizeof(path), "%s/text.json", dir);
    write_text_file(path, TEXT);
    // the corpus: this repository's README and core sources, as they are in this commit
    EXPECT(run_cmd(out, sizeof(out), "cat README.md core/*.c core/*.h > %s/text", dir) == 0, "corpus: %s", out);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", dir);
}

// Trains config NAME.json into DIR/OUT: ranks 0 alone, else under mpirun. extra: more flags.
static int train(const char *name, const char *out_dir, int ranks, const char *extra, char *out, size_t cap) {
    char data[600] = "";
    if (!strncmp(name, "text", 4)) snprintf(data, sizeof(data), "--data %s/text", dir);
    if (ranks == 0)
        return run_cmd(out, cap, "%s train %s/%s.json --out %s/%s %s %s", reformer_bin(), dir, name, dir, out_dir, data, extra);
    return run_cmd(out, cap, MPIRUN " -np %d %s train %s/%s.json --out %s/%s %s %s", ranks, reformer_bin(), dir, name, dir,
                   out_dir, data, extra);
}

// The numbers under key in DIR/OUT/metrics.jsonl, in order.
static int column(const char *out_dir, const char *key, double *v, int cap) {
    char path[600], line[4096], pat[64];
    snprintf(path, sizeof(path), "%s/%s/metrics.jsonl", dir, out_dir);
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && n < cap && fgets(line, sizeof(line), f)) {
        char *s = strstr(line, pat);
        if (s) v[n++] = atof(s + strlen(pat));
    }
    if (f) fclose(f);
    return n;
}

// The float data of a checkpoint (parameters, then optimizer state): after the header.
static unsigned char *ckpt_data(const char *out_dir, const char *name, size_t *len) {
    char path[600];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, out_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *b = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    if (fread(b, 1, (size_t)size, f) != (size_t)size) size = 0;
    fclose(f);
    unsigned hlen = size >= 16 ? b[12] | b[13] << 8 | b[14] << 16 | (unsigned)b[15] << 24 : 0;
    size_t at = 16 + hlen;
    at += (64 - at % 64) % 64;
    if ((long)at + 4 > size) {
        free(b);
        return NULL;
    }
    *len = (size_t)size - 4 - at;
    memmove(b, b + at, *len);
    return b;
}

static void check_ranks_match_one_process(const char *name) {
    char out[65536], sub[32];
    int rc = train(name, "one", 0, "", out, sizeof(out));
    EXPECT(rc == 0, "%s, one process: %d %s", name, rc, out);
    double one[32], many[32], vone[8], vmany[8];
    int n = column("one", "loss", one, 32), nv = column("one", "valid_loss", vone, 8);
    EXPECT(n == 20 && nv == 2, "%s: %d losses, %d validations", name, n, nv);
    for (int ranks = 2; ranks <= 3; ranks++) {
        snprintf(sub, sizeof(sub), "ranks%d", ranks);
        // 3 ranks sum the gradient in rounds of 10,000 doubles (tens of rounds), as large models do
        setenv("REFORMER_DIST_BUCKET", ranks == 3 ? "10000" : "", 1);
        rc = train(name, sub, ranks, "", out, sizeof(out));
        EXPECT(rc == 0 && strstr(out, "processes x 1 threads"), "%s, %d ranks: %d %s", name, ranks, rc, out);
        int m = column(sub, "loss", many, 32), mv = column(sub, "valid_loss", vmany, 8);
        EXPECT(m == n && mv == nv, "%s, %d ranks: %d losses and %d validations, want %d and %d", name, ranks, m, mv, n, nv);
        double worst = 0, vworst = 0;
        for (int i = 0; i < n && i < m; i++) worst = fmax(worst, fabs(many[i] - one[i]) / fabs(one[i]));
        for (int i = 0; i < nv && i < mv; i++) vworst = fmax(vworst, fabs(vmany[i] - vone[i]) / fabs(vone[i]));
        printf("    %s, %d ranks vs one process: loss within %.2e, validation within %.2e (relative)\n", name, ranks,
               worst, vworst);
        // gradients are summed in double whatever the grouping, so what differs is rounding in
        // the last place of a double, not a drift (float sums gave 1e-4 after 20 LSH steps)
        EXPECT(worst < 1e-9, "%s, %d ranks: losses differ by %.2e relative", name, ranks, worst);
        EXPECT(vworst < 1e-9, "%s, %d ranks: validation losses differ by %.2e relative", name, ranks, vworst);
    }
}

void test_mpi_ranks_match_one_process(void) {
    setup();
    check_ranks_match_one_process("copy");
    check_ranks_match_one_process("text");
    teardown();
}

void test_mpi_sharded_optimizer_is_exact(void) {
    setup();
    char out[65536];
    int rc = train("text", "zero", 3, "--steps 10", out, sizeof(out));
    EXPECT(rc == 0 && strstr(out, "optimizer state sharded"), "sharded: %d %s", rc, out);
    char path[512];
    snprintf(path, sizeof(path), "%s/text-whole.json", dir);
    char json[4096];
    snprintf(json, sizeof(json), "%s", TEXT);
    char *end = strstr(json, "\"threads\": 1}}");
    snprintf(end, sizeof(json) - (size_t)(end - json), "\"threads\": 1, \"shard_optimizer\": false}}");
    write_text_file(path, json);
    rc = train("text-whole", "whole", 3, "--steps 10", out, sizeof(out));
    EXPECT(rc == 0 && !strstr(out, "optimizer state sharded"), "whole state: %d %s", rc, out);
    size_t la = 0, lb = 0;
    unsigned char *a = ckpt_data("zero", "last.ckpt", &la), *b = ckpt_data("whole", "last.ckpt", &lb);
    EXPECT(a && b && la == lb && la > 0, "checkpoints: %zu and %zu bytes of data", la, lb);
    // parameters and the (gathered) Adam state: the same bits
    EXPECT(a && b && la == lb && memcmp(a, b, la) == 0, "sharded and whole optimizer state give different bits");
    free(a);
    free(b);
    teardown();
}

void test_mpi_resume(void) {
    setup();
    char out[65536];
    int rc = train("text", "full", 2, "", out, sizeof(out));
    EXPECT(rc == 0, "20 steps: %d %s", rc, out);
    rc = train("text", "part", 2, "--steps 10", out, sizeof(out));
    EXPECT(rc == 0, "10 steps: %d %s", rc, out);
    char extra[600];
    snprintf(extra, sizeof(extra), "--resume %s/part/last.ckpt", dir);
    rc = train("text", "part", 2, extra, out, sizeof(out));
    EXPECT(rc == 0 && !strstr(out, "note:"), "resume, same ranks: %d %s", rc, out);
    double a[32], b[32];
    int na = column("full", "loss", a, 32), nb = column("part", "loss", b, 32);
    EXPECT(na == 20 && nb == 20, "%d and %d losses", na, nb);
    for (int i = 0; i < na && i < nb; i++) EXPECT(a[i] == b[i], "step %d: %.17g vs %.17g", i + 1, a[i], b[i]);
    size_t la = 0, lb = 0;
    unsigned char *x = ckpt_data("full", "last.ckpt", &la), *y = ckpt_data("part", "last.ckpt", &lb);
    EXPECT(x && y && la == lb && memcmp(x, y, la) == 0, "resumed run's last checkpoint differs");
    free(x);
    free(y);
    // under 3 ranks: a notice, and the run goes on, the optimizer slices re-cut
    rc = train("text", "other", 2, "--steps 10", out, sizeof(out));
    snprintf(extra, sizeof(extra), "--resume %s/other/last.ckpt", dir);
    rc = train("text", "other", 3, extra, out, sizeof(out));
    EXPECT(rc == 0 && strstr(out, "saved by 2 processes, resumed by 3"), "resume under 3 ranks: %d %s", rc, out);
    double c[32];
    int nc = column("other", "loss", c, 32);
    EXPECT(nc == 20, "%d losses", nc);
    double worst = 0;
    for (int i = 0; i < 20 && i < nc; i++) worst = fmax(worst, fabs(c[i] - a[i]) / a[i]);
    EXPECT(worst < 1e-9, "resumed under 3 ranks: losses differ by %.2e", worst);
    teardown();
}

void test_mpi_missing_data_names_rank(void) {
    setup();
    char out[65536];
    time_t t0 = time(NULL);
    // rank 1 is given a file that does not exist (mpirun's MPMD form: one command per rank)
    int rc = run_cmd(out, sizeof(out),
                     MPIRUN " -np 1 %s train %s/text.json --out %s/m --data %s/text : -np 1 %s train %s/text.json --out %s/m "
                     "--data %s/no-such-file",
                     reformer_bin(), dir, dir, dir, reformer_bin(), dir, dir, dir);
    double took = difftime(time(NULL), t0);
    EXPECT(rc != 0, "exit %d", rc);
    EXPECT(strstr(out, "reformer train: rank 1: ") && strstr(out, "no-such-file"), "message: %s", out);
    EXPECT(took < 30, "took %.0f s", took);
    teardown();
}

void test_mpi_more_ranks_than_sequences(void) {
    setup();
    char path[512], json[4096], out[65536];
    snprintf(json, sizeof(json), "%s", TEXT);
    char *b = strstr(json, "\"batch\": 6");
    b[9] = '2';  // train.batch 2 on 3 ranks: one computes nothing, but keeps its optimizer slice
    snprintf(path, sizeof(path), "%s/text-b2.json", dir);
    write_text_file(path, json);
    int rc = train("text-b2", "one", 0, "", out, sizeof(out));
    EXPECT(rc == 0, "one process: %d %s", rc, out);
    rc = train("text-b2", "three", 3, "", out, sizeof(out));
    EXPECT(rc == 0 && strstr(out, "1 of them compute nothing"), "3 ranks: %d %s", rc, out);
    double a[32], c[32];
    int na = column("one", "loss", a, 32), nc = column("three", "loss", c, 32);
    EXPECT(na == 20 && nc == 20, "%d and %d losses", na, nc);
    for (int i = 0; i < na && i < nc; i++) EXPECT(fabs(a[i] - c[i]) < 1e-9 * a[i], "step %d: %.17g vs %.17g", i + 1, a[i], c[i]);
    teardown();
}

// ImageNet 64x64 from the archives numpy wrote (tests/data/numpy: 5 training images in a zip
// of two .npz, 2 validation images): each rank reads only its images of the batch.
void test_mpi_images(void) {
    setup();
    char path[512], json[2048], out[65536];
    snprintf(json, sizeof(json),
             "{\"model\": {\"vocab\": 256, \"d_model\": 32, \"d_ff\": 64, \"n_heads\": 2, \"d_head\": 16,"
             " \"attn_layers\": [\"local\", \"lsh\"], \"n_hashes\": 2, \"n_buckets\": 8, \"lsh_chunk\": 128,"
             " \"local_chunk\": 128, \"axial_shape\": [96, 128], \"axial_dims\": [8, 24]},"
             " \"data\": {\"kind\": \"imagenet64\", \"path\": \"tests/data/numpy/outer.zip\","
             " \"valid_path\": \"tests/data/numpy/plain.npz\", \"seq_len\": 12288, \"shuffle_images\": 2},"
             " \"train\": {\"batch\": 2, \"steps\": 6, \"eval_every\": 3, \"save_every\": 3, \"log_every\": 1, \"threads\": 1}}");
    snprintf(path, sizeof(path), "%s/images.json", dir);
    write_text_file(path, json);
    int rc = train("images", "one", 0, "", out, sizeof(out));
    EXPECT(rc == 0, "one process: %d %s", rc, out);
    rc = train("images", "two", 2, "", out, sizeof(out));
    EXPECT(rc == 0, "2 ranks: %d %s", rc, out);
    double a[8], b[8], va[4], vb[4];
    int na = column("one", "loss", a, 8), nb = column("two", "loss", b, 8);
    int nva = column("one", "valid_loss", va, 4), nvb = column("two", "valid_loss", vb, 4);
    EXPECT(na == 6 && nb == 6 && nva == 2 && nvb == 2, "%d/%d losses, %d/%d validations", na, nb, nva, nvb);
    for (int i = 0; i < na && i < nb; i++) EXPECT(fabs(a[i] - b[i]) < 1e-9 * a[i], "step %d: %.17g vs %.17g", i + 1, a[i], b[i]);
    for (int i = 0; i < nva && i < nvb; i++) EXPECT(fabs(va[i] - vb[i]) < 1e-9 * va[i], "validation %d: %.17g vs %.17g", i, va[i], vb[i]);
    teardown();
}
