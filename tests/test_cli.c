// test_cli.c: the reformer binary end to end: config errors, train, resume bit for
// bit, eval, sample, damaged checkpoints, Ctrl-C. REFORMER_BIN names the binary.
#include <glob.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cmd/config.h"
#include "test.h"

static char dir[256];

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static const char *TINY =
    "{\"model\": {\"vocab\": 16, \"d_model\": 32, \"d_ff\": 64, \"n_heads\": 2, \"d_head\": 16,"
    " \"attn_layers\": [\"local\", \"lsh\"], \"n_hashes\": 2, \"lsh_chunk\": 8, \"local_chunk\": 8,"
    " \"axial_shape\": [4, 8], \"axial_dims\": [8, 24], \"hidden_dropout\": 0.1, \"lsh_dropout\": 0.1},"
    " \"data\": {\"kind\": \"copy\", \"seq_len\": 32},"
    " \"train\": {\"batch\": 2, \"steps\": 6, \"lr\": 0.003, \"warmup\": 2, \"eval_every\": 3,"
    " \"save_every\": 3, \"log_every\": 1, \"seed\": 5, \"threads\": 2}}";

static void setup(void) {
    snprintf(dir, sizeof(dir), "/tmp/reformer-cli-XXXXXX");
    if (!mkdtemp(dir)) abort();
    char path[512];
    snprintf(path, sizeof(path), "%s/tiny.json", dir);
    write_text_file(path, TINY);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", dir);
}

static void config_error(const char *json, const char *needle) {
    char path[512], out[8192];
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    write_text_file(path, json);
    int rc = run_cmd(out, sizeof(out), "%s train %s --out %s/bad-run", reformer_bin(), path, dir);
    EXPECT(rc == 2, "%s: exit %d, want 2 (%s)", needle, rc, out);
    EXPECT(strstr(out, needle) != NULL, "message lacks '%s': %s", needle, out);
    EXPECT(lines(out) == 1, "not one line: %s", out);
    char run_dir[512];
    snprintf(run_dir, sizeof(run_dir), "%s/bad-run", dir);
    struct stat sb;
    EXPECT(stat(run_dir, &sb) != 0, "%s: output directory was created", needle);
}

void test_cli_config_errors(void) {
    setup();
    config_error("{\"model\": {\"d_modle\": 64}}", "unknown key 'model.d_modle' (did you mean 'model.d_model'?)");
    config_error("{\"model\": {\"d_model\": \"big\"}}", "model.d_model: expected an integer");
    config_error("{\"model\": {\"d_model\": 1.5}}", "model.d_model: expected an integer");
    config_error("{\"model\": {\"n_hashes\": 99}}", "model.n_hashes: 99 is out of range");
    config_error("{\"model\": {\"causal\": 1}}", "model.causal: expected true or false");
    config_error("{\"model\": {\"activation\": \"swish\"}}", "model.activation");
    config_error("{\"model\": {\"n_buckets\": 7}}", "model.n_buckets");
    config_error("{\"model\": {\"attn_layers\": [\"lsh\", \"dense\"]}}", "model.attn_layers[1]");
    config_error("{\"model\": {\"axial_dims\": [10, 10]}}", "model.axial_dims");
    config_error("{\"model\": {\"axial_shape\": [64, 64]}, \"data\": {\"seq_len\": 100000}}", "model.axial_shape");
    // a length the chunks do not divide is padded, and the positions must hold the padded length
    config_error("{\"model\": {\"axial_shape\": [10, 10], \"axial_dims\": [64, 192]}, \"data\": {\"seq_len\": 100}}",
                 "model.axial_shape: 10 x 10 positions is fewer than the 128 that data.seq_len 100 pads to");
    config_error("{\"train\": {\"lr\": -1}}", "train.lr");
    config_error("{\"train\": {\"memory_mb\": -1}}", "train.memory_mb: -1 is out of range");
    config_error("{\"train\": {\"memory_mb\": \"lots\"}}", "train.memory_mb: expected an integer (MiB) or \"auto\"");
    config_error("{\"tran\": {}}", "unknown section 'tran'");
    config_error("{\"model\": {\"d_model\": 64,}}", "invalid JSON near line 1");
    // heads and objectives against the model and the data
    config_error("{\"train\": {\"objective\": \"mlm\"}}", "train.objective: \"mlm\" predicts masked tokens from both sides");
    config_error("{\"model\": {\"head\": \"classifier\"}}", "model.classes: required");
    config_error("{\"model\": {\"head\": \"classifier\", \"classes\": 10}}", "needs data with classes");
    config_error("{\"data\": {\"kind\": \"listops\"}}", "data.kind: listops is classification");
    config_error("{\"model\": {\"head\": \"linear\"}}", "model.head");
    config_error("{\"model\": {\"causal\": false}, \"train\": {\"objective\": \"mlm\", \"mask_id\": 300}}",
                 "train.mask_id: 300 is outside model.vocab 256");
    teardown();
}

void test_cli_flags(void) {
    char out[16384];
    EXPECT(run_cmd(out, sizeof(out), "%s --help", reformer_bin()) == 0 && strstr(out, "train"), "--help: %s", out);
    EXPECT(run_cmd(out, sizeof(out), "%s --version", reformer_bin()) == 0 && strstr(out, "reformer "), "--version");
    const char *cmds[] = {"train", "eval", "sample", "bench", "export"};
    for (int i = 0; i < 5; i++) {
        EXPECT(run_cmd(out, sizeof(out), "%s %s --help", reformer_bin(), cmds[i]) == 0 && strstr(out, "usage:"), "%s --help", cmds[i]);
        int rc = run_cmd(out, sizeof(out), "%s %s --bogus", reformer_bin(), cmds[i]);
        EXPECT(rc == 2 && strstr(out, "unknown option '--bogus'") && strstr(out, "usage:"), "%s --bogus: %d %s", cmds[i], rc, out);
    }
    EXPECT(run_cmd(out, sizeof(out), "%s bench --seq", reformer_bin()) == 2 && strstr(out, "--seq needs a value"), "missing value: %s", out);
    EXPECT(run_cmd(out, sizeof(out), "%s bench --seq 12x", reformer_bin()) == 2 && strstr(out, "not an integer"), "garbage: %s", out);
    EXPECT(run_cmd(out, sizeof(out), "%s frobnicate", reformer_bin()) == 2, "unknown command");
    EXPECT(run_cmd(out, sizeof(out), "%s bench --seq 256 --layers 1 --mode decode --json", reformer_bin()) == 0 &&
               strstr(out, "\"mode\": \"decode\"") && strstr(out, "\"tokens_per_s\""), "bench decode: %s", out);
    EXPECT(run_cmd(out, sizeof(out), "%s --help-config", reformer_bin()) == 0 && strstr(out, "model.n_hashes"), "--help-config");
}

// loss column of metrics.jsonl, one per line, as printed (17 significant digits)
static int losses(const char *path, char vals[][40], int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048];
    int n = 0;
    while (n < cap && fgets(line, sizeof(line), f)) {
        char *s = strstr(line, "\"loss\": ");
        if (!s) continue;
        sscanf(s + 8, "%39[^,]", vals[n++]);
    }
    fclose(f);
    return n;
}

void test_cli_train_resume_eval_sample(void) {
    setup();
    char out[65536], a[16][40], b[16][40];
    int rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --out %s/full", reformer_bin(), dir, dir);
    EXPECT(rc == 0, "train: %d %s", rc, out);
    // stop after 3 steps, resume to 6: the loss curve must be the same to the last bit
    rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --steps 3 --out %s/part", reformer_bin(), dir, dir);
    EXPECT(rc == 0, "train 3: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --resume %s/part/last.ckpt --out %s/part", reformer_bin(), dir, dir, dir);
    EXPECT(rc == 0, "resume: %d %s", rc, out);
    char pa[512], pb[512];
    snprintf(pa, sizeof(pa), "%s/full/metrics.jsonl", dir);
    snprintf(pb, sizeof(pb), "%s/part/metrics.jsonl", dir);
    int na = losses(pa, a, 16), nb = losses(pb, b, 16);
    EXPECT(na == 6 && nb == 6, "metrics lines %d and %d, want 6", na, nb);
    for (int i = 0; i < na && i < nb; i++) EXPECT(!strcmp(a[i], b[i]), "step %d: %s vs %s", i + 1, a[i], b[i]);
    // the resumed checkpoint must not load with a different model
    char other[512];
    snprintf(other, sizeof(other), "%s/other.json", dir);
    write_text_file(other, "{\"model\": {\"vocab\": 16, \"d_model\": 64, \"d_ff\": 64, \"n_heads\": 2, \"d_head\": 16,"
                      " \"attn_layers\": [\"local\", \"lsh\"], \"lsh_chunk\": 8, \"local_chunk\": 8,"
                      " \"axial_shape\": [4, 8], \"axial_dims\": [8, 56]}, \"data\": {\"kind\": \"copy\", \"seq_len\": 32}}");
    rc = run_cmd(out, sizeof(out), "%s train %s --resume %s/full/last.ckpt --out %s/x", reformer_bin(), other, dir, dir);
    EXPECT(rc == 2 && strstr(out, "model.d_model"), "mismatched resume: %d %s", rc, out);
    // eval
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/full/last.ckpt --json", reformer_bin(), dir);
    EXPECT(rc == 0 && strstr(out, "\"loss_nats\"") && strstr(out, "\"bits\"") && strstr(out, "\"tokens\"") &&
               strstr(out, "\"accuracy\""), "eval: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s eval %s/tiny.json --ckpt %s/full/best.ckpt --split test", reformer_bin(), dir, dir);
    EXPECT(rc == 0 && strstr(out, "split test"), "eval best: %d %s", rc, out);
    // sample: same seed, same output
    char s1[4096], s2[4096], s3[4096];
    run_cmd(s1, sizeof(s1), "%s sample --ckpt %s/full/last.ckpt --prompt-tokens '0 3 5 7' --len 20 --seed 9", reformer_bin(), dir);
    run_cmd(s2, sizeof(s2), "%s sample --ckpt %s/full/last.ckpt --prompt-tokens '0 3 5 7' --len 20 --seed 9", reformer_bin(), dir);
    rc = run_cmd(s3, sizeof(s3), "%s sample --ckpt %s/full/last.ckpt --prompt-tokens '0 3 5 7' --len 20 --seed 10", reformer_bin(), dir);
    EXPECT(rc == 0 && !strcmp(s1, s2) && lines(s1) == 1 && !strncmp(s1, "0 3 5 7 ", 8), "sample: '%s' vs '%s'", s1, s2);
    EXPECT(strcmp(s1, s3) != 0, "seeds 9 and 10 gave the same 20 tokens: %s", s1);
    rc = run_cmd(out, sizeof(out), "%s sample --ckpt %s/full/last.ckpt --prompt-tokens '0 99'", reformer_bin(), dir);
    EXPECT(rc == 2 && lines(out) == 1, "out-of-vocabulary prompt: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s sample --ckpt %s/full/last.ckpt --len 100000", reformer_bin(), dir);
    EXPECT(rc == 2 && strstr(out, "positions"), "too long: %d %s", rc, out);
    teardown();
}

// train.memory_mb: the layers keep their activations and the run learns the same curve,
// up to the rounding of the reversible inverse it skips.
void test_cli_memory_mb(void) {
    setup();
    char out[65536], a[16][40], b[16][40], path[512];
    int rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --out %s/recompute", reformer_bin(), dir, dir);
    EXPECT(rc == 0 && !strstr(out, "keep their activations"), "train: %d %s", rc, out);
    snprintf(path, sizeof(path), "%s/keep.json", dir);
    char json[2048];
    snprintf(json, sizeof(json), "%.*s, \"memory_mb\": 64}}", (int)strlen(TINY) - 2, TINY);
    write_text_file(path, json);
    rc = run_cmd(out, sizeof(out), "%s train %s --out %s/keep", reformer_bin(), path, dir);
    EXPECT(rc == 0 && strstr(out, "the top 2 of 2 layers keep their activations"), "train keep: %d %s", rc, out);
    char pa[512], pb[512];
    snprintf(pa, sizeof(pa), "%s/recompute/metrics.jsonl", dir);
    snprintf(pb, sizeof(pb), "%s/keep/metrics.jsonl", dir);
    int na = losses(pa, a, 16), nb = losses(pb, b, 16);
    EXPECT(na == 6 && nb == 6, "metrics lines %d and %d, want 6", na, nb);
    for (int i = 0; i < na && i < nb; i++)
        EXPECT(fabs(atof(a[i]) - atof(b[i])) <= 1e-6 * fabs(atof(a[i])), "step %d: %s vs %s", i + 1, a[i], b[i]);
    // "auto": half of the free memory, which holds this tiny model's two layers anywhere
    snprintf(json, sizeof(json), "%.*s, \"memory_mb\": \"auto\"}}", (int)strlen(TINY) - 2, TINY);
    write_text_file(path, json);
    rc = run_cmd(out, sizeof(out), "%s train %s --steps 2 --out %s/auto", reformer_bin(), path, dir);
    EXPECT(rc == 0 && strstr(out, "the top 2 of 2 layers keep their activations") && strstr(out, "train.memory_mb auto"),
           "train auto: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s bench --seq 256 --layers 2 --steps 1 --warmup 0 --memory-mb 1000 --json",
                 reformer_bin());
    EXPECT(rc == 0 && strstr(out, "\"kept_layers\": 2"), "bench --memory-mb: %d %s", rc, out);
    teardown();
}

void test_cli_damaged_checkpoints(void) {
    setup();
    char out[65536];
    int rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --steps 2 --out %s/r", reformer_bin(), dir, dir);
    EXPECT(rc == 0, "train: %s", out);
    // truncated
    run_cmd(NULL, 0, "head -c 5000 %s/r/last.ckpt > %s/trunc.ckpt", dir, dir);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/trunc.ckpt", reformer_bin(), dir);
    EXPECT(rc == 1 && lines(out) == 1 && (strstr(out, "truncated") || strstr(out, "does not fit")), "truncated: %d %s", rc, out);
    // one bit flipped in the tensor data
    run_cmd(NULL, 0, "cp %s/r/last.ckpt %s/flip.ckpt && printf '\\x55' | dd of=%s/flip.ckpt bs=1 seek=20000 conv=notrunc status=none", dir, dir, dir);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/flip.ckpt", reformer_bin(), dir);
    EXPECT(rc == 1 && lines(out) == 1 && strstr(out, "CRC mismatch"), "bit flip: %d %s", rc, out);
    // not a checkpoint at all, and a missing file
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/tiny.json", reformer_bin(), dir);
    EXPECT(rc == 1 && lines(out) == 1 && strstr(out, "magic"), "not a checkpoint: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/nope.ckpt", reformer_bin(), dir);
    EXPECT(rc == 1 && lines(out) == 1 && strstr(out, "cannot open"), "missing: %d %s", rc, out);
    teardown();
}

void test_cli_failed_save_keeps_last_checkpoint(void) {
    setup();
    char out[65536];
    int rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --steps 3 --out %s/s", reformer_bin(), dir, dir);
    EXPECT(rc == 0, "train: %s", out);
    char before[4096], after[4096];
    run_cmd(before, sizeof(before), "%s eval --ckpt %s/s/last.ckpt --json", reformer_bin(), dir);
    // the next save cannot create its temporary file: the run must fail loudly and
    // leave the last good checkpoint as it was
    // (temporary files are named PATH.tmp.PID; exec keeps the shell's $$)
    rc = run_cmd(out, sizeof(out), "sh -c 'mkdir %s/s/last.ckpt.tmp.$$ && exec %s train %s/tiny.json --resume %s/s/last.ckpt --out %s/s'",
                 dir, reformer_bin(), dir, dir, dir);
    EXPECT(rc == 1 && strstr(out, "last.ckpt.tmp"), "failed save: %d %s", rc, out);
    rc = run_cmd(after, sizeof(after), "%s eval --ckpt %s/s/last.ckpt --json", reformer_bin(), dir);
    EXPECT(rc == 0 && !strcmp(before, after), "last checkpoint changed: %s vs %s", before, after);
    teardown();
}

// Adafactor from the command line: a 3 + 3 resumed run equals the 6-step run to the last
// digit, its checkpoint is smaller (rows + columns of state per matrix, not 2 x parameters),
// and resuming it with Adam is refused with the key named.
void test_cli_adafactor_resume(void) {
    setup();
    char out[65536], cfg[600], a[4096], b[4096];
    snprintf(cfg, sizeof(cfg), "%s/af.json", dir);
    run_cmd(NULL, 0, "sed 's/\"lr\": 0.003/\"optimizer\": \"adafactor\", \"lr\": 0.01/' %s/tiny.json > %s", dir, cfg);
    int rc = run_cmd(out, sizeof(out), "%s train %s --out %s/full && %s train %s --steps 3 --out %s/part && "
                     "%s train %s --resume %s/part/last.ckpt --out %s/part", reformer_bin(), cfg, dir, reformer_bin(),
                     cfg, dir, reformer_bin(), cfg, dir, dir);
    EXPECT(rc == 0 && strstr(out, "adafactor"), "adafactor runs: %d %s", rc, out);
    run_cmd(a, sizeof(a), "grep -o '\"loss\": [^,]*' %s/full/metrics.jsonl", dir);
    run_cmd(b, sizeof(b), "grep -o '\"loss\": [^,]*' %s/part/metrics.jsonl", dir);
    EXPECT(lines(a) == 6 && !strcmp(a, b), "resumed Adafactor run differs:\n%s\nvs\n%s", a, b);
    run_cmd(NULL, 0, "%s train %s/tiny.json --steps 3 --out %s/adam", reformer_bin(), dir, dir);
    struct stat sa, sb;
    char pa[512], pb[512];
    snprintf(pa, sizeof(pa), "%s/adam/last.ckpt", dir);
    snprintf(pb, sizeof(pb), "%s/full/last.ckpt", dir);
    EXPECT(stat(pa, &sa) == 0 && stat(pb, &sb) == 0 && sb.st_size * 2 < sa.st_size,
           "Adafactor checkpoint %lld bytes, Adam's %lld", (long long)sb.st_size, (long long)sa.st_size);
    rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --resume %s/full/last.ckpt --steps 8 --out %s/full", reformer_bin(), dir, dir, dir);
    EXPECT(rc == 1 && lines(out) <= 2 && strstr(out, "train.optimizer"), "resume Adafactor with Adam: %d %s", rc, out);
    teardown();
}

// A full disk (the temporary file is a link to /dev/full, whose writes fail with ENOSPC):
// the save fails with the reason, the run exits 1, the last good checkpoint is as it was and
// no temporary file is left behind.
void test_cli_disk_full_keeps_last_checkpoint(void) {
    setup();
    char out[65536], before[4096], after[4096];
    int rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --steps 3 --out %s/s", reformer_bin(), dir, dir);
    EXPECT(rc == 0, "train: %s", out);
    run_cmd(before, sizeof(before), "%s eval --ckpt %s/s/last.ckpt --json", reformer_bin(), dir);
    rc = run_cmd(out, sizeof(out), "sh -c 'ln -s /dev/full %s/s/last.ckpt.tmp.$$ && exec %s train %s/tiny.json --resume %s/s/last.ckpt --out %s/s'",
                 dir, reformer_bin(), dir, dir, dir);
    EXPECT(rc == 1 && strstr(out, "No space left on device"), "disk full: %d %s", rc, out);
    rc = run_cmd(after, sizeof(after), "%s eval --ckpt %s/s/last.ckpt --json", reformer_bin(), dir);
    EXPECT(rc == 0 && !strcmp(before, after), "last checkpoint changed: %s vs %s", before, after);
    char left[4096];
    run_cmd(left, sizeof(left), "ls %s/s | grep tmp", dir);
    EXPECT(left[0] == '\0', "the temporary file was left behind: %s", left);
    teardown();
}

void test_cli_export_and_eval_hf_dir(void) {
    setup();
    char out[65536];
    int rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --steps 2 --out %s/r", reformer_bin(), dir, dir);
    EXPECT(rc == 0, "train: %s", out);
    rc = run_cmd(out, sizeof(out), "%s export --ckpt %s/r/last.ckpt --out %s/hf", reformer_bin(), dir, dir);
    EXPECT(rc == 0, "export: %d %s", rc, out);
    // 32 bytes below the vocabulary of 16, as one sequence
    run_cmd(NULL, 0, "printf '\\001\\002\\003\\004\\005\\006\\007\\010\\011\\012\\013\\014\\015\\016\\017\\000"
                 "\\001\\002\\003\\004\\005\\006\\007\\010\\011\\012\\013\\014\\015\\016\\017\\000' > %s/seq.bin", dir);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/hf --data %s/seq.bin --json", reformer_bin(), dir, dir);
    EXPECT(rc == 0 && strstr(out, "\"loss_nats\"") && strstr(out, "\"tokens\": 31"), "eval HF dir: %d %s", rc, out);
    // 27 of them: padded to 32 as HF pads (chunks of 8), 26 labels
    rc = run_cmd(out, sizeof(out), "head -c 27 %s/seq.bin > %s/seq27.bin && %s eval --ckpt %s/hf --data %s/seq27.bin --json",
                 dir, dir, reformer_bin(), dir, dir);
    EXPECT(rc == 0 && strstr(out, "\"tokens\": 26"), "eval HF dir, 27 bytes: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/hf --data %s/seq.bin --token-offset 2", reformer_bin(), dir, dir);
    EXPECT(rc == 2 && lines(out) == 1 && strstr(out, "vocabulary"), "offset past vocabulary: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/hf", reformer_bin(), dir);
    EXPECT(rc == 2 && strstr(out, "--data FILE is needed"), "missing --data: %d %s", rc, out);
    // the token offset travels with the directory (reformer.json)
    run_cmd(NULL, 0, "echo '{\"token_offset\": 2}' > %s/hf/reformer.json", dir);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/hf --data %s/seq.bin", reformer_bin(), dir, dir);
    EXPECT(rc == 2 && strstr(out, "offset 2"), "offset from reformer.json: %d %s", rc, out);
    run_cmd(NULL, 0, "echo '{\"token_offset\": 0}' > %s/hf/reformer.json", dir);
    // fine-tuning from the HF directory or from the checkpoint: the same weights, the same run
    char ft[600];
    snprintf(ft, sizeof(ft), "%s/ft.json", dir);
    write_text_file(ft, "{\"model\": {\"hidden_dropout\": 0.1}, \"data\": {\"kind\": \"copy\", \"seq_len\": 32},"
                   " \"train\": {\"batch\": 2, \"steps\": 3, \"eval_every\": 0, \"log_every\": 1, \"seed\": 5}}");
    rc = run_cmd(out, sizeof(out), "%s train %s --ckpt %s/hf --out %s/ft-hf && %s train %s --ckpt %s/r/last.ckpt --out %s/ft-ckpt",
                 reformer_bin(), ft, dir, dir, reformer_bin(), ft, dir, dir);
    EXPECT(rc == 0 && strstr(out, "fine-tuning"), "fine-tune: %d %s", rc, out);
    char la[4096], lb[4096];
    run_cmd(la, sizeof(la), "grep -o '\"loss\": [^,]*' %s/ft-hf/metrics.jsonl", dir);
    run_cmd(lb, sizeof(lb), "grep -o '\"loss\": [^,]*' %s/ft-ckpt/metrics.jsonl", dir);
    EXPECT(lines(la) == 3 && !strcmp(la, lb), "fine-tuning from the HF export and from the checkpoint differ:\n%s\nvs\n%s", la, lb);
    rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --ckpt %s/hf --out %s/ft-bad", reformer_bin(), dir, dir, dir);
    EXPECT(rc == 2 && lines(out) == 1 && strstr(out, "model.vocab") && strstr(out, "comes from"), "model keys with --ckpt: %d %s", rc, out);
    // sample straight from the HF directory, cached and not: both extend the prompt
    rc = run_cmd(out, sizeof(out), "%s sample --ckpt %s/hf --prompt-tokens '0 3 5' --len 12 --seed 2", reformer_bin(), dir);
    EXPECT(rc == 0 && !strncmp(out, "0 3 5 ", 6) && lines(out) == 1, "sample HF dir: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s sample --ckpt %s/hf --prompt-tokens '0 3 5' --len 12 --no-cache", reformer_bin(), dir);
    EXPECT(rc == 0 && !strncmp(out, "0 3 5 ", 6), "sample HF dir without the cache: %d %s", rc, out);
    teardown();
}

void test_cli_interrupt_saves(void) {
    setup();
    char cmd[1024], metrics[512], out[65536];
    snprintf(metrics, sizeof(metrics), "%s/i/metrics.jsonl", dir);
    pid_t pid = fork();
    if (pid == 0) {
        snprintf(cmd, sizeof(cmd), "%s/tiny.json", dir);
        char outdir[512];
        snprintf(outdir, sizeof(outdir), "%s/i", dir);
        freopen("/dev/null", "w", stderr);
        execl(reformer_bin(), reformer_bin(), "train", cmd, "--steps", "100000", "--out", outdir, (char *)NULL);
        _exit(127);
    }
    struct stat sb;
    for (int i = 0; i < 200 && (stat(metrics, &sb) != 0 || sb.st_size < 200); i++) usleep(50000);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "train after SIGINT: status %d", st);
    int rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/i/last.ckpt --json", reformer_bin(), dir);
    EXPECT(rc == 0 && strstr(out, "loss_nats"), "checkpoint after SIGINT: %d %s", rc, out);
    teardown();
}

// eval --attn / --hashes: one trained model under other attention, its parameters unchanged.
void test_cli_eval_attention_overrides(void) {
    setup();
    char out[65536], cfg[600];
    snprintf(cfg, sizeof(cfg), "%s/lsh.json", dir);
    run_cmd(NULL, 0, "sed 's/\"attn_layers\": \\[\"local\", \"lsh\"\\]/\"attn_layers\": [\"lsh\"]/' %s/tiny.json > %s", dir, cfg);
    int rc = run_cmd(out, sizeof(out), "%s train %s --steps 3 --out %s/r", reformer_bin(), cfg, dir);
    EXPECT(rc == 0, "train: %s", out);
    char base[4096], full[4096], local[4096], h1[4096], h8[4096];
    rc = run_cmd(base, sizeof(base), "%s eval --ckpt %s/r/last.ckpt --json", reformer_bin(), dir);
    rc |= run_cmd(full, sizeof(full), "%s eval --ckpt %s/r/last.ckpt --json --attn full", reformer_bin(), dir);
    rc |= run_cmd(local, sizeof(local), "%s eval --ckpt %s/r/last.ckpt --json --attn chunks", reformer_bin(), dir);
    rc |= run_cmd(h1, sizeof(h1), "%s eval --ckpt %s/r/last.ckpt --json --hashes 1", reformer_bin(), dir);
    rc |= run_cmd(h8, sizeof(h8), "%s eval --ckpt %s/r/last.ckpt --json --attn lsh --hashes 8", reformer_bin(), dir);
    EXPECT(rc == 0, "evals: %s %s %s %s %s", base, full, local, h1, h8);
    // each override changes what the model computes (32 tokens, chunk 8: LSH is not full attention)
    EXPECT(strcmp(base, full) && strcmp(base, local) && strcmp(base, h1) && strcmp(base, h8) && strcmp(full, local),
           "an override changed nothing: %s | %s | %s | %s | %s", base, full, local, h1, h8);
    // a local layer has no shared query/key to hash with
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/r/last.ckpt --attn chunks --json && %s train %s/tiny.json --steps 2 --out %s/l"
                 " && %s eval --ckpt %s/l/last.ckpt --attn lsh", reformer_bin(), dir, reformer_bin(), dir, dir, reformer_bin(), dir);
    EXPECT(rc == 2 && strstr(out, "--attn lsh: layer 0 is local attention"), "lsh on a local layer: %d %s", rc, out);
    // the one-bucket mode is "chunks": "local" names a layer kind, which eval cannot make
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/r/last.ckpt --attn local", reformer_bin(), dir);
    EXPECT(rc == 2 && strstr(out, "is not one of lsh, chunks, full"), "--attn local: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/r/last.ckpt --hashes 17", reformer_bin(), dir);
    EXPECT(rc == 2 && strstr(out, "--hashes"), "--hashes 17: %d %s", rc, out);
    // sample takes the same overrides
    rc = run_cmd(out, sizeof(out), "%s sample --ckpt %s/r/last.ckpt --attn full --hashes 2 --prompt-tokens '0 3' --len 5", reformer_bin(), dir);
    EXPECT(rc == 0 && !strncmp(out, "0 3 ", 4), "sample --attn full: %d %s", rc, out);
    teardown();
}

// The first number after "key": in a line of JSON.
static double json_value(const char *json, const char *key) {
    char want[64];
    snprintf(want, sizeof(want), "\"%s\": ", key);
    const char *p = strstr(json, want);
    return p ? atof(p + strlen(want)) : NAN;
}

// train.precision and --precision: bf16 trains and evaluates where the build and CPU have it
// (fp32 checkpoints, close to the fp32 loss, not equal to it), and is refused in one line
// where they do not.
void test_cli_precision(void) {
    setup();
    char out[8192], fp32[4096], bf16[4096], cfg[600];
    int rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --steps 3 --out %s/r", reformer_bin(), dir, dir);
    EXPECT(rc == 0, "train: %s", out);
    snprintf(cfg, sizeof(cfg), "%s/bf16.json", dir);
    run_cmd(NULL, 0, "sed 's/\"threads\": 2}/\"threads\": 2, \"precision\": \"bf16\"}/' %s/tiny.json > %s", dir, cfg);
    rc = run_cmd(out, sizeof(out), "REFORMER_BLOCKS=bogus %s eval --ckpt %s/r/last.ckpt", reformer_bin(), dir);
    EXPECT(rc == 2 && strstr(out, "REFORMER_BLOCKS: bogus") && lines(out) == 1, "a bad REFORMER_BLOCKS: %d %s", rc, out);
#ifdef REFORMER_DNNL
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-bf16")) {  // AMX asked for where there is none
        rc = run_cmd(out, sizeof(out), "REFORMER_BLOCKS=amx %s eval --ckpt %s/r/last.ckpt", reformer_bin(), dir);
        EXPECT(rc == 2 && strstr(out, "REFORMER_BLOCKS: amx: this CPU") && lines(out) == 1, "REFORMER_BLOCKS=amx: %d %s",
               rc, out);
    }
#endif
    int have = 0;
#ifdef REFORMER_DNNL
    __builtin_cpu_init();
    have = __builtin_cpu_supports("avx512bf16");
#endif
    if (!have) {
        rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/r/last.ckpt --precision bf16", reformer_bin(), dir);
        EXPECT(rc == 2 && strstr(out, "precision bf16: this") && lines(out) == 1, "eval --precision bf16: %d %s", rc, out);
        rc = run_cmd(out, sizeof(out), "%s train %s --steps 2 --out %s/b", reformer_bin(), cfg, dir);
        EXPECT(rc == 2 && strstr(out, "precision bf16: this"), "train in bf16: %d %s", rc, out);
        rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --precision bf16 --steps 2 --out %s/b", reformer_bin(), dir, dir);
        EXPECT(rc == 2 && strstr(out, "precision bf16: this"), "train --precision bf16: %d %s", rc, out);
        teardown();
        return;
    }
    rc = run_cmd(fp32, sizeof(fp32), "%s eval --ckpt %s/r/last.ckpt --json", reformer_bin(), dir);
    rc |= run_cmd(bf16, sizeof(bf16), "%s eval --ckpt %s/r/last.ckpt --json --precision bf16", reformer_bin(), dir);
    double a = json_value(fp32, "loss_nats"), b = json_value(bf16, "loss_nats");
    EXPECT(rc == 0 && a != b && fabs(a - b) < 0.02 * a, "eval fp32 %s, bf16 %s", fp32, bf16);
    rc = run_cmd(out, sizeof(out), "%s train %s --steps 2 --out %s/b && %s eval --ckpt %s/b/last.ckpt --json", reformer_bin(),
                 cfg, dir, reformer_bin(), dir);
    EXPECT(rc == 0 && strstr(out, "\"loss_nats\""), "train in bf16, eval in fp32: %d %s", rc, out);
    // train --precision sets train.precision: the same run, byte for byte
    rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --precision bf16 --steps 2 --out %s/f && cmp %s/b/last.ckpt %s/f/last.ckpt",
                 reformer_bin(), dir, dir, dir, dir);
    EXPECT(rc == 0, "train --precision bf16 against train.precision bf16: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s train %s --precision fp16 --steps 2 --out %s/g", reformer_bin(), cfg, dir);
    EXPECT(rc == 2 && strstr(out, "--precision") && lines(out) == 1, "train --precision fp16: %d %s", rc, out);
    teardown();
}

// eval --ckpt CKPT --data FILE: a checkpoint of a byte model scores a whole file. The test
// split written out as a file scores exactly as the split does; a file shorter than the
// training length runs at the longest length the model takes; a copy-task checkpoint refuses.
void test_cli_eval_data_file(void) {
    setup();
    char text[3000], path[600], out[8192], a[4096], b[4096];
    for (int i = 0; i < 3000; i++) text[i] = "the quick brown fox jumps over the lazy dog. "[(i * 7 + i / 45) % 45];
    snprintf(path, sizeof(path), "%s/text.txt", dir);
    write_text_file(path, "");
    FILE *f = fopen(path, "wb");
    fwrite(text, 1, sizeof(text), f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/test-split.txt", dir);  // the last 5%: dataset_open's test split
    f = fopen(path, "wb");
    fwrite(text + 3000 - 150, 1, 150, f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/short.txt", dir);
    write_text_file(path, "0123456789");
    snprintf(path, sizeof(path), "%s/bytes.json", dir);
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "{\"model\": {\"vocab\": 256, \"d_model\": 32, \"d_ff\": 64, \"n_heads\": 2, \"d_head\": 16,"
             " \"attn_layers\": [\"local\", \"lsh\"], \"lsh_chunk\": 8, \"local_chunk\": 8, \"axial_shape\": [4, 8],"
             " \"axial_dims\": [8, 24]}, \"data\": {\"kind\": \"enwik8\", \"path\": \"%s/text.txt\", \"seq_len\": 32},"
             " \"train\": {\"batch\": 2, \"steps\": 2, \"eval_every\": 0, \"threads\": 2}}", dir);
    write_text_file(path, cfg);
    int rc = run_cmd(out, sizeof(out), "%s train %s --out %s/r", reformer_bin(), path, dir);
    EXPECT(rc == 0, "train: %s", out);
    rc = run_cmd(a, sizeof(a), "%s eval --ckpt %s/r/last.ckpt --split test --json", reformer_bin(), dir);
    rc |= run_cmd(b, sizeof(b), "%s eval --ckpt %s/r/last.ckpt --data %s/test-split.txt --json", reformer_bin(), dir, dir);
    EXPECT(rc == 0 && json_value(a, "tokens") == 149 && json_value(a, "loss_nats") == json_value(b, "loss_nats") &&
               json_value(b, "tokens") == 149 && strstr(b, "\"split\": \"file\""),
           "split %s against file %s", a, b);
    rc = run_cmd(a, sizeof(a), "%s eval --ckpt %s/r/last.ckpt --data %s/text.txt --json", reformer_bin(), dir, dir);
    EXPECT(rc == 0 && json_value(a, "tokens") == 2999, "whole file: %s", a);
    rc = run_cmd(a, sizeof(a), "%s eval --ckpt %s/r/last.ckpt --data %s/short.txt --json", reformer_bin(), dir, dir);
    EXPECT(rc == 0 && json_value(a, "tokens") == 9, "10 bytes in windows of 8 (the longest the chunks take): %s", a);
    rc = run_cmd(out, sizeof(out), "%s train %s/tiny.json --steps 1 --out %s/c && %s eval --ckpt %s/c/last.ckpt --data %s/text.txt",
                 reformer_bin(), dir, dir, reformer_bin(), dir, dir);
    EXPECT(rc == 2 && strstr(out, "--data scores bytes") && lines(out) > 0, "copy checkpoint with --data: %d %s", rc, out);
    teardown();
}

// A config that leaves the axial position tables out gets them from its length and width:
// 100 tokens -> [8, 13] (104 positions), d_model 32 -> [8, 24]; the run's config.json says so.
void test_cli_axial_from_length(void) {
    setup();
    char path[600], out[8192];
    snprintf(path, sizeof(path), "%s/noaxial.json", dir);
    write_text_file(path, "{\"model\": {\"vocab\": 8, \"d_model\": 32, \"d_ff\": 32, \"n_heads\": 2, \"d_head\": 16,"
                          " \"attn_layers\": [\"local\"], \"local_chunk\": 10},"
                          " \"data\": {\"kind\": \"copy\", \"seq_len\": 100}, \"train\": {\"batch\": 2, \"steps\": 1, \"eval_every\": 0}}");
    int rc = run_cmd(out, sizeof(out), "%s train %s --out %s/r && tr -d ' \\n\\t' < %s/r/config.json", reformer_bin(), path,
                     dir, dir);
    EXPECT(rc == 0 && strstr(out, "\"axial_shape\":[8,13]") && strstr(out, "\"axial_dims\":[8,24]"), "%d %s", rc, out);
    teardown();
}

// ListOps end to end: LRA's files (scripts/listops.py, small), a classifier trained on them,
// its accuracy on a split and on a file, per-sequence predictions, and the HF round trip.
void test_cli_listops_classifier(void) {
    setup();
    char out[16384], a[4096], b[4096], path[600], cfg[1400];
    int rc = run_cmd(out, sizeof(out), "python3 scripts/listops.py --out %s/lo --seed 2 --train 64 --valid 16 --test 16"
                     " --min-length 20 --max-length 60 >/dev/null", dir);
    EXPECT(rc == 0, "listops.py: %s", out);
    snprintf(cfg, sizeof(cfg),
             "{\"model\": {\"vocab\": 16, \"d_model\": 32, \"d_ff\": 64, \"n_heads\": 2, \"d_head\": 16,"
             " \"attn_layers\": [\"local\", \"lsh\"], \"lsh_chunk\": 8, \"local_chunk\": 8, \"lsh_chunks_after\": 1,"
             " \"local_chunks_after\": 1, \"causal\": false, \"head\": \"classifier\", \"classes\": 10, \"hash_seed\": 1},"
             " \"data\": {\"kind\": \"listops\", \"path\": \"%s/lo\", \"seq_len\": 64},"
             " \"train\": {\"batch\": 4, \"steps\": 4, \"eval_every\": 2, \"threads\": 2}}", dir);
    snprintf(path, sizeof(path), "%s/lo.json", dir);
    write_text_file(path, cfg);
    rc = run_cmd(out, sizeof(out), "%s train %s --out %s/r", reformer_bin(), path, dir);
    EXPECT(rc == 0 && strstr(out, "acc "), "train: %s", out);
    rc = run_cmd(a, sizeof(a), "%s eval --ckpt %s/r/last.ckpt --split test --json", reformer_bin(), dir);
    rc |= run_cmd(b, sizeof(b), "%s eval --ckpt %s/r/last.ckpt --data %s/lo/basic_test.tsv --json", reformer_bin(), dir, dir);
    double acc = json_value(a, "accuracy");
    EXPECT(rc == 0 && json_value(a, "tokens") == 16 && acc >= 0 && acc <= 1 && json_value(b, "accuracy") == acc &&
               json_value(b, "loss_nats") == json_value(a, "loss_nats"),
           "split %s against file %s", a, b);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/r/last.ckpt --data %s/lo/basic_test.tsv --predict", reformer_bin(), dir, dir);
    int right = 0, rows = 0;
    for (char *l = out; rc == 0 && *l; l = strchr(l, '\n') + 1) {
        int k, p, y;
        if (sscanf(l, "%d\t%d\t%d", &k, &p, &y) == 3) {
            EXPECT(k == rows && p >= 0 && p < 10 && y >= 0 && y < 10, "prediction line %s", l);
            rows++;
            right += p == y;
        }
        if (!strchr(l, '\n')) break;
    }
    EXPECT(rc == 0 && rows == 16 && fabs(right / 16.0 - acc) < 1e-9 && strstr(out, "class accuracy"), "--predict: %s", out);
    // HF's ReformerForSequenceClassification layout, scored the same (hash_seed: the same rotations)
    rc = run_cmd(out, sizeof(out), "%s export --ckpt %s/r/last.ckpt --out %s/hf && grep -q ReformerForSequenceClassification %s/hf/config.json"
                 " && %s eval --ckpt %s/hf --data %s/lo/basic_test.tsv --json", reformer_bin(), dir, dir, dir, reformer_bin(), dir, dir);
    EXPECT(rc == 0 && json_value(out, "accuracy") == acc && fabs(json_value(out, "loss_nats") - json_value(a, "loss_nats")) < 1e-6,
           "HF directory: %s against %s", out, a);
    // fine-tuning takes the classifier from --ckpt (ours or HF's): a config of data and training only
    snprintf(cfg, sizeof(cfg), "{\"data\": {\"kind\": \"listops\", \"path\": \"%s/lo\", \"seq_len\": 64},"
             " \"train\": {\"batch\": 4, \"steps\": 2, \"lr\": 1e-4, \"threads\": 2}}", dir);
    snprintf(path, sizeof(path), "%s/ft.json", dir);
    write_text_file(path, cfg);
    rc = run_cmd(out, sizeof(out), "%s train %s --ckpt %s/r/last.ckpt --out %s/ft && %s train %s --ckpt %s/hf --out %s/ft-hf"
                 " && %s eval --ckpt %s/ft-hf/last.ckpt --split test --json", reformer_bin(), path, dir, dir,
                 reformer_bin(), path, dir, dir, reformer_bin(), dir);
    EXPECT(rc == 0 && strstr(out, "\"accuracy\""), "fine-tuning the classifier: %d %s", rc, out);
    // a classifier is not sampled; a bad file names its line
    rc = run_cmd(out, sizeof(out), "%s sample --ckpt %s/r/last.ckpt --len 4", reformer_bin(), dir);
    EXPECT(rc == 2 && strstr(out, "classifier") && lines(out) == 1, "sample: %d %s", rc, out);
    snprintf(path, sizeof(path), "%s/bad.tsv", dir);
    write_text_file(path, "Source\tTarget\n( [MAX 2 9 ] )\t9\n( [MAX 2 X ] )\t9\n");
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/r/last.ckpt --data %s", reformer_bin(), dir, path);
    EXPECT(rc == 1 && strstr(out, "bad.tsv:3") && lines(out) == 1, "bad file: %d %s", rc, out);
    teardown();
}

// A masked LM end to end on the copy task: trained, scored on its masked tokens, scored on every
// position with --mask-rate 0, and exported as ReformerForMaskedLM.
void test_cli_masked_lm(void) {
    setup();
    char out[8192], a[4096], path[600];
    snprintf(path, sizeof(path), "%s/mlm.json", dir);
    write_text_file(path, "{\"model\": {\"vocab\": 16, \"d_model\": 32, \"d_ff\": 64, \"n_heads\": 2, \"d_head\": 16,"
                          " \"attn_layers\": [\"local\", \"lsh\"], \"lsh_chunk\": 8, \"local_chunk\": 8, \"causal\": false},"
                          " \"data\": {\"kind\": \"copy\", \"seq_len\": 32},"
                          " \"train\": {\"batch\": 4, \"steps\": 3, \"eval_every\": 3, \"objective\": \"mlm\", \"threads\": 2}}");
    int rc = run_cmd(out, sizeof(out), "%s train %s --out %s/m", reformer_bin(), path, dir);
    EXPECT(rc == 0, "train: %s", out);
    rc = run_cmd(a, sizeof(a), "%s eval --ckpt %s/m/last.ckpt --json", reformer_bin(), dir);
    double masked = json_value(a, "tokens");
    EXPECT(rc == 0 && masked > 0.1 * 64 * 32 && masked < 0.2 * 64 * 32 && json_value(a, "accuracy") >= 0,
           "15%% of 64 x 32 positions masked and scored: %s", a);
    rc = run_cmd(a, sizeof(a), "%s eval --ckpt %s/m/last.ckpt --json --mask-rate 0", reformer_bin(), dir);
    EXPECT(rc == 0 && json_value(a, "tokens") == 64 * 32, "--mask-rate 0 scores every position: %s", a);
    rc = run_cmd(out, sizeof(out), "%s export --ckpt %s/m/last.ckpt --out %s/hf && grep -q ReformerForMaskedLM %s/hf/config.json",
                 reformer_bin(), dir, dir, dir);
    EXPECT(rc == 0, "export: %s", out);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/m/last.ckpt --predict", reformer_bin(), dir);
    EXPECT(rc == 2 && strstr(out, "not a classifier") && lines(out) == 1, "--predict on a masked LM: %s", out);
    // an HF ReformerForMaskedLM directory on a file, every position (HF's labels=input_ids); our
    // logits add lm_head.bias, which transformers 5.17 leaves out (test_hf.c compares without it)
    rc = run_cmd(a, sizeof(a), "%s eval --ckpt tests/hf/fixtures/exported_mlm --data tests/hf/fixtures/exported_mlm/data.bin"
                 " --mask-rate 0 --json", reformer_bin());
    EXPECT(rc == 0 && json_value(a, "tokens") == 64 && fabs(json_value(a, "loss_nats") - 2.7078211) < 1e-5, "HF masked LM: %s", a);
    rc = run_cmd(a, sizeof(a), "%s eval --ckpt tests/hf/fixtures/exported_mlm --data tests/hf/fixtures/exported_mlm/data.bin"
                 " --mask-rate 0.5 --json", reformer_bin());
    EXPECT(rc == 0 && json_value(a, "tokens") > 16 && json_value(a, "tokens") < 48, "HF masked LM, half masked: %s", a);
    teardown();
}

// A data.seq_len the chunks do not divide trains and evaluates: each sequence is padded at the
// end to the next multiple (30 tokens to 32 with chunks of 8) and the padding carries no label.
void test_cli_any_length(void) {
    setup();
    char out[8192], path[600];
    snprintf(path, sizeof(path), "%s/len30.json", dir);
    write_text_file(path, "{\"model\": {\"vocab\": 16, \"d_model\": 32, \"d_ff\": 64, \"n_heads\": 2, \"d_head\": 16,"
                          " \"attn_layers\": [\"local\", \"lsh\"], \"lsh_chunk\": 8, \"local_chunk\": 8},"
                          " \"data\": {\"kind\": \"copy\", \"seq_len\": 30},"
                          " \"train\": {\"batch\": 4, \"steps\": 3, \"eval_every\": 3, \"threads\": 2}}");
    int rc = run_cmd(out, sizeof(out), "%s train %s --out %s/r", reformer_bin(), path, dir);
    EXPECT(rc == 0 && strstr(out, "valid"), "train at 30 tokens: %s", out);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/r/last.ckpt --json", reformer_bin(), dir);
    EXPECT(rc == 0 && json_value(out, "tokens") == 64 * 29, "64 sequences of 29 labels each: %s", out);
    teardown();
}

// Every config the repository ships loads and validates as it stands; a fine-tuning stage
// (no model section: the model comes from --ckpt) at least reads key by key.
void test_cli_shipped_configs_load(void) {
    glob_t g;
    EXPECT(glob("configs/*.json", 0, NULL, &g) == 0 && g.gl_pathc >= 10, "configs/*.json: %zu files", g.gl_pathc);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        Config c;
        char err[1024];
        config_default(&c);
        int rc = config_load(g.gl_pathv[i], &c, err, sizeof(err));
        if (rc && !config_given(&c, "model.d_model")) {  // a stage that fine-tunes
            config_default(&c);
            rc = config_load_keys(g.gl_pathv[i], &c, err, sizeof(err));
            EXPECT(rc == 0 && !config_given(&c, "model.d_model"), "%s: %s", g.gl_pathv[i], err);
            continue;
        }
        EXPECT(rc == 0, "%s", err);
    }
    globfree(&g);
}
