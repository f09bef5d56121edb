// test_bad_input.c: what an outside tester feeds the program on purpose. Every case must end
// in one line naming what is wrong and a non-zero exit: never a crash (exit 134/139), a
// hang (each command runs under `timeout`), or a silently accepted input. The classes:
// HuggingFace config values, reader bugs, sizes trusted before they are checked, bad input
// accepted silently, and two runs sharing an output directory.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../cmd/safetensors.h"
#include "../data/archive.h"
#include "../data/imagenet.h"
#include "../data/png.h"
#include "../data/tar.h"
#include "test.h"

static char dir[256];

static void setup(void) {
    snprintf(dir, sizeof(dir), "/tmp/reformer-bad-XXXXXX");
    if (!mkdtemp(dir)) abort();
}

static void teardown(void) { run_cmd(NULL, 0, "rm -rf %s", dir); }

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) abort();
}

static void write_text(const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_bytes(path, text, strlen(text));
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

// Runs a reformer command line (under a 60 s timeout) and checks the outcome: exit code
// `want` (or any failure for -1), one line of output that contains `needle`.
static void expect_refused(int want, const char *needle, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void expect_refused(int want, const char *needle, const char *fmt, ...) {
    char args[2048], out[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    int rc = run_cmd(out, sizeof(out), "timeout 60 %s %s", reformer_bin(), args);
    EXPECT(rc != 0 && rc != 124 && rc < 128 && (want < 0 || rc == want), "%s: exit %d (want %d): %s", args, rc, want, out);
    EXPECT(strstr(out, needle) != NULL, "%s: message lacks '%s': %s", args, needle, out);
    EXPECT(lines(out) == 1, "%s: not one line: %s", args, out);
}

static const char *HF_BASE =
    "\"attn_layers\": [\"local\", \"lsh\"], \"vocab_size\": 258, \"hidden_size\": 32, \"feed_forward_size\": 64,"
    " \"num_attention_heads\": 2, \"attention_head_size\": 16, \"axial_pos_shape\": [8, 8],"
    " \"axial_pos_embds_dim\": [8, 24], \"is_decoder\": true";

// An HF directory whose config.json is HF_BASE plus `extra`; eval on 64 bytes of text.
static void hf_case(const char *extra, const char *needle) {
    char text[4096];
    snprintf(text, sizeof(text), "{%s%s%s}", HF_BASE, extra[0] ? ", " : "", extra);
    run_cmd(NULL, 0, "mkdir -p %s/hf", dir);
    write_text("hf/config.json", text);
    expect_refused(-1, needle, "eval --ckpt %s/hf --data %s/text64", dir, dir);
}

// 1. Every value of a HuggingFace config.json passes the ranges of our config table.
void test_bad_input_hf_config_ranges(void) {
    setup();
    char path[512];
    snprintf(path, sizeof(path), "%s/text64", dir);
    char bytes[64];
    memset(bytes, 'a', sizeof(bytes));
    write_bytes(path, bytes, sizeof(bytes));
    hf_case("\"num_buckets\": -2", "num_buckets");
    hf_case("\"num_buckets\": 7", "num_buckets");
    hf_case("\"num_buckets\": 0", "num_buckets: 0 buckets");
    hf_case("\"num_buckets\": [4, 3]", "num_buckets");
    hf_case("\"num_hashes\": 0", "num_hashes");
    hf_case("\"num_hashes\": -1", "num_hashes");
    hf_case("\"num_hashes\": 17", "num_hashes");
    hf_case("\"lsh_attn_chunk_length\": -4", "lsh_attn_chunk_length");
    hf_case("\"lsh_attn_chunk_length\": 0", "lsh_attn_chunk_length");
    hf_case("\"local_num_chunks_before\": -1", "local_num_chunks_before");
    hf_case("\"lsh_num_chunks_after\": 1e300", "lsh_num_chunks_after");
    hf_case("\"layer_norm_eps\": 0", "layer_norm_eps");
    hf_case("\"layer_norm_eps\": -1e-12", "layer_norm_eps");
    hf_case("\"attention_head_size\": 1e30", "attention_head_size");
    hf_case("\"num_buckets\": [4096, 4096], \"num_hashes\": 16", "num_buckets");
    hf_case("\"hidden_act\": \"swish\"", "hidden_act");
    // replaced keys: the later value wins in some parsers, the first in ours; refuse both
    hf_case("\"num_hashes\": 2, \"num_hashes\": 4", "appears twice");
    run_cmd(NULL, 0, "mkdir -p %s/hf2", dir);
    write_text("hf2/config.json", "{\"attn_layers\": [\"lsh\"], \"vocab_size\": 258, \"hidden_size\": 32, \"feed_forward_size\": 64,"
                                  " \"num_attention_heads\": 2, \"attention_head_size\": 16,"
                                  " \"axial_pos_shape\": [65536, 65536], \"axial_pos_embds_dim\": [8, 24]}");
    expect_refused(-1, "axial_pos_shape", "eval --ckpt %s/hf2 --data %s/text64", dir, dir);
    write_text("hf2/config.json", "{\"attn_layers\": [\"lsh\"], \"vocab_size\": -258}");
    expect_refused(-1, "vocab_size", "eval --ckpt %s/hf2 --data %s/text64", dir, dir);
    write_text("hf2/config.json", "{\"attn_layers\": [\"lsh\"]} trailing");
    expect_refused(-1, "invalid JSON", "eval --ckpt %s/hf2 --data %s/text64", dir, dir);
    // what reformer cannot score is refused, not scored as a causal LM: another head, a regression
    // "classifier", a causal masked LM, or a bidirectional model under a next-token loss
    hf_case("\"architectures\": [\"ReformerForQuestionAnswering\"]", "architectures: ReformerForQuestionAnswering");
    hf_case("\"architectures\": [\"ReformerForSequenceClassification\"], \"num_labels\": 1", "num_labels: 1");
    hf_case("\"architectures\": [\"ReformerForSequenceClassification\"], \"problem_type\": \"regression\"",
            "problem_type: regression");
    hf_case("\"architectures\": [\"ReformerForMaskedLM\"]", "ReformerForMaskedLM is bidirectional");
    run_cmd(NULL, 0, "mkdir -p %s/hf3", dir);
    write_text("hf3/config.json", "{\"attn_layers\": [\"lsh\"], \"vocab_size\": 258, \"hidden_size\": 32, \"feed_forward_size\": 64,"
                                  " \"num_attention_heads\": 2, \"attention_head_size\": 16, \"axial_pos_shape\": [8, 8],"
                                  " \"axial_pos_embds_dim\": [8, 24], \"is_decoder\": false}");
    expect_refused(-1, "is_decoder false", "eval --ckpt %s/hf3 --data %s/text64", dir, dir);
    write_text("bidir.json", "{\"model\": {\"vocab\": 8, \"d_model\": 16, \"d_ff\": 16, \"n_heads\": 1, \"d_head\": 8,"
                             " \"attn_layers\": [\"lsh\"], \"lsh_chunk\": 8, \"axial_shape\": [4, 4], \"axial_dims\": [8, 8],"
                             " \"causal\": false}, \"data\": {\"kind\": \"copy\", \"seq_len\": 16}}");
    expect_refused(2, "model.causal: false", "train %s/bidir.json --out %s/bidir", dir, dir);
    // an LSH chunk of 17 beside a local chunk of 16: 64 bytes pad to 272, more than the 64 positions
    hf_case("\"lsh_attn_chunk_length\": 17, \"local_attn_chunk_length\": 16", "least common multiple 272");
    teardown();
}

// A zip whose one member's local header offset points past its local header.
static size_t zip_with_bad_offset(uint8_t *z) {
    const char *name = "enwik8", *text = "hello world, hello world, hello world";
    size_t nl = strlen(name), tl = strlen(text), at = 0;
    uint32_t crc = (uint32_t)crc32(0L, (const uint8_t *)text, (uInt)tl);
    uint8_t lh[30] = {0x50, 0x4b, 3, 4, 20};
    lh[14] = crc & 255, lh[15] = crc >> 8 & 255, lh[16] = crc >> 16 & 255, lh[17] = crc >> 24;
    lh[18] = lh[22] = (uint8_t)tl;
    lh[26] = (uint8_t)nl;
    memcpy(z, lh, 30), at = 30;
    memcpy(z + at, name, nl), at += nl;
    memcpy(z + at, text, tl), at += tl;
    size_t cd = at;
    uint8_t ch[46] = {0x50, 0x4b, 1, 2, 20, 0, 20};
    memcpy(ch + 16, lh + 14, 12);
    ch[28] = (uint8_t)nl;
    ch[42] = 7;  // local header offset 7: no local header there
    memcpy(z + at, ch, 46), at += 46;
    memcpy(z + at, name, nl), at += nl;
    uint8_t end[22] = {0x50, 0x4b, 5, 6};
    end[8] = end[10] = 1;
    end[12] = (uint8_t)(at - cd);
    end[16] = (uint8_t)cd;
    memcpy(z + at, end, 22), at += 22;
    return at;
}

static size_t gzip_of(const uint8_t *data, size_t n, uint8_t *out, size_t cap) {
    z_stream s;
    memset(&s, 0, sizeof(s));
    if (deflateInit2(&s, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    s.next_in = (uint8_t *)data;
    s.avail_in = (uInt)n;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    if (deflate(&s, Z_FINISH) != Z_STREAM_END) abort();
    size_t len = cap - s.avail_out;
    deflateEnd(&s);
    return len;
}

// 2-3. Reader bugs: a bad local header offset, PNG header chunks, tar base-256 sizes, an
// empty image directory; gzip members after the first and bytes after the last.
void test_bad_input_readers(void) {
    setup();
    char path[512], err[1024];
    uint8_t *data = NULL, buf[4096];
    size_t len;
    int kind;
    snprintf(path, sizeof(path), "%s/bad-offset.zip", dir);
    write_bytes(path, buf, zip_with_bad_offset(buf));
    EXPECT(archive_read_all(path, "enwik8", 1, 1 << 20, &data, &len, &kind, err, sizeof(err)) == -1 &&
               strstr(err, "bad local header"), "bad local header offset: %s", err);
    // two gzip members read as one file, as gunzip reads them
    const char *a = "first member. ", *b = "second member.";
    size_t n1 = gzip_of((const uint8_t *)a, strlen(a), buf, sizeof(buf));
    size_t n2 = gzip_of((const uint8_t *)b, strlen(b), buf + n1, sizeof(buf) - n1);
    snprintf(path, sizeof(path), "%s/two.gz", dir);
    write_bytes(path, buf, n1 + n2);
    EXPECT(archive_read_all(path, NULL, 0, 1 << 20, &data, &len, &kind, err, sizeof(err)) == 0 && len == strlen(a) + strlen(b) &&
               !memcmp(data, "first member. second member.", len), "two members: %s", err);
    free(data);
    memcpy(buf + n1, "garbage!", 8);
    write_bytes(path, buf, n1 + 8);
    EXPECT(archive_read_all(path, NULL, 0, 1 << 20, &data, &len, &kind, err, sizeof(err)) == -1 && strstr(err, "after the end"),
           "trailing garbage: %s", err);
    // a gzip of zeros that inflates past the limit is refused at the limit
    size_t zn = 8 << 20;
    uint8_t *zeros = calloc(zn, 1), *packed = malloc(zn);
    size_t pn = gzip_of(zeros, zn, packed, zn);
    write_bytes(path, packed, pn);
    EXPECT(archive_read_all(path, NULL, 0, 1 << 20, &data, &len, &kind, err, sizeof(err)) == -1 && strstr(err, "more than"),
           "gzip bomb: %s", err);
    free(zeros);
    free(packed);
    // PNG: an IHDR of 12 bytes (its fields would be read past the chunk), and two IHDRs
    uint8_t png[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, rgb[64 * 64 * 3];
    uint8_t ihdr[17] = {'I', 'H', 'D', 'R', 0, 0, 0, 64, 0, 0, 0, 64, 8, 2, 0, 0, 0};
    size_t at = 8;
    for (int k = 0; k < 2; k++) {
        uint32_t n = 13, c = (uint32_t)crc32(0L, ihdr, 17);
        uint8_t head[4] = {0, 0, 0, (uint8_t)n}, tail[4] = {c >> 24, c >> 16 & 255, c >> 8 & 255, c & 255};
        memcpy(png + at, head, 4), memcpy(png + at + 4, ihdr, 17), memcpy(png + at + 21, tail, 4);
        at += 25;
    }
    EXPECT(png_decode_rgb(png, at, 64, 64, rgb, "two.png", err, sizeof(err)) == -1 && strstr(err, "repeated"), "two IHDRs: %s", err);
    uint32_t c12 = (uint32_t)crc32(0L, ihdr, 16);
    uint8_t short_png[8 + 24];
    memcpy(short_png, png, 8);
    uint8_t h12[4] = {0, 0, 0, 12}, t12[4] = {c12 >> 24, c12 >> 16 & 255, c12 >> 8 & 255, c12 & 255};
    memcpy(short_png + 8, h12, 4), memcpy(short_png + 12, ihdr, 16), memcpy(short_png + 28, t12, 4);
    uint8_t *exact = malloc(sizeof(short_png));  // exactly sized: an over-read is an ASan report
    memcpy(exact, short_png, sizeof(short_png));
    EXPECT(png_decode_rgb(exact, sizeof(short_png), 64, 64, rgb, "short.png", err, sizeof(err)) == -1 &&
               strstr(err, "not 13 bytes"), "IHDR of 12 bytes: %s", err);
    free(exact);
    // tar: a base-256 size field with every bit set (shifting it was undefined behaviour)
    uint8_t tar[1024] = {0};
    strcpy((char *)tar, "a.png");
    memcpy(tar + 257, "ustar", 5);
    memset(tar + 124, 0xff, 12);
    tar[156] = '0';
    memset(tar + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += tar[i];
    snprintf((char *)tar + 148, 8, "%06o", sum);
    snprintf(path, sizeof(path), "%s/huge.tar", dir);
    write_bytes(path, tar, sizeof(tar));
    FILE *f = fopen(path, "rb");
    EXPECT(tar_walk(f, sizeof(tar), path, NULL, NULL, err, sizeof(err)) == -1 && strstr(err, "declares"), "base-256 size: %s", err);
    fclose(f);
    // an empty image directory
    ImageSet s;
    snprintf(path, sizeof(path), "%s/empty", dir);
    mkdir(path, 0755);
    EXPECT(imageset_open(&s, path, 4, 1, err, sizeof(err)) == -1 && strstr(err, "no .npz"), "empty directory: %s", err);
    teardown();
}

static const char *TINY =
    "{\"model\": {\"vocab\": 8, \"d_model\": 16, \"d_ff\": 16, \"n_heads\": 1, \"d_head\": 8, \"attn_layers\": [\"lsh\"],"
    " \"n_hashes\": 2, \"n_buckets\": 4, \"lsh_chunk\": 8, \"axial_shape\": [4, 4], \"axial_dims\": [8, 8]},"
    " \"data\": {\"kind\": \"copy\", \"seq_len\": 16}, \"train\": {\"batch\": 1, \"steps\": 2, \"eval_every\": 0, \"threads\": 1}}";

// A copy of the checkpoint at src with `from` replaced by `to` in its header (the data
// moved to the new aligned offset); fix_crc recomputes the CRC (a deliberate forgery) or
// keeps the old one (a damaged file).
static void forge(const char *src, const char *dst, const char *from, const char *to, int fix_crc) {
    FILE *f = fopen(src, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)n);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    uint32_t hlen;
    memcpy(&hlen, b + 12, 4);
    size_t data_at = (16 + hlen + 63) / 64 * 64, data_len = (size_t)n - 4 - data_at;
    char *header = malloc(hlen + strlen(to) + 1);
    memcpy(header, b + 16, hlen);
    header[hlen] = '\0';
    char *at = strstr(header, from);
    if (!at) abort();
    memmove(at + strlen(to), at + strlen(from), strlen(at + strlen(from)) + 1);
    memcpy(at, to, strlen(to));
    uint32_t new_len = (uint32_t)strlen(header);
    size_t new_at = (16 + new_len + 63) / 64 * 64;
    uint8_t *o = calloc(new_at + data_len + 4, 1);
    memcpy(o, b, 12);
    memcpy(o + 12, &new_len, 4);
    memcpy(o + 16, header, new_len);
    memcpy(o + new_at, b + data_at, data_len + 4);
    if (fix_crc) {
        uint32_t c = (uint32_t)crc32(0L, o, (uInt)(new_at + data_len));
        memcpy(o + new_at + data_len, &c, 4);
    }
    write_bytes(dst, o, new_at + data_len + 4);
    free(o);
    free(header);
    free(b);
}

// 4-5. Checkpoints: nothing in a header is used before its sizes and CRC agree, and forged
// fields (with a valid CRC) are refused rather than resumed.
void test_bad_input_checkpoint_fields(void) {
    setup();
    write_text("tiny.json", TINY);
    char out[8192], ckpt[512], bad[512];
    EXPECT(run_cmd(out, sizeof(out), "%s train %s/tiny.json --out %s/r", reformer_bin(), dir, dir) == 0, "train: %s", out);
    snprintf(ckpt, sizeof(ckpt), "%s/r/last.ckpt", dir);
    snprintf(bad, sizeof(bad), "%s/bad.ckpt", dir);
    // a header edited to a huge model, CRC left: refused before anything is allocated
    forge(ckpt, bad, "\"d_model\":16", "\"d_model\":60", 0);
    expect_refused(1, "CRC mismatch", "eval --ckpt %s", bad);
    // the same with the CRC fixed: the sizes no longer account for the file
    forge(ckpt, bad, "\"vocab\":8,", "\"vocab\":9,", 1);
    expect_refused(1, "parameters", "eval --ckpt %s", bad);
    forge(ckpt, bad, "\"step\":2", "\"step\":-2", 1);
    expect_refused(1, "malformed", "train %s/tiny.json --resume %s --out %s/r2", dir, bad, dir);
    forge(ckpt, bad, "\"data_rng\":[\"", "\"data_rng\":[\"zz", 1);
    expect_refused(1, "data_rng", "train %s/tiny.json --resume %s --out %s/r3", dir, bad, dir);
    // and the untouched checkpoint still resumes (the forgeries above are what was refused)
    forge(ckpt, bad, "\"step\":2", "\"step\":1", 1);
    EXPECT(run_cmd(out, sizeof(out), "%s train %s/tiny.json --resume %s --out %s/r4", reformer_bin(), dir, bad, dir) == 0,
           "a valid forgery (step 1) was refused: %s", out);
    teardown();
}

// 4-6. The command line: files that are not regular files, sizes beyond the machine,
// inputs that used to be accepted silently, and two runs in one output directory.
void test_bad_input_command_line(void) {
    setup();
    write_text("tiny.json", TINY);
    char out[8192];
    run_cmd(NULL, 0, "mkfifo %s/fifo", dir);
    expect_refused(2, "not a regular file", "train %s/fifo --out %s/r", dir, dir);
    expect_refused(1, "not a regular file", "eval --ckpt %s/fifo", dir);
    EXPECT(run_cmd(out, sizeof(out), "%s train %s/tiny.json --out %s/r", reformer_bin(), dir, dir) == 0, "train: %s", out);
    expect_refused(1, "not a regular file", "sample --ckpt %s/r/last.ckpt --prompt-file /dev/zero", dir);
    expect_refused(1, "not a regular file", "sample --ckpt %s/r/last.ckpt --prompt-file %s", dir, dir);
    expect_refused(1, "not a regular file", "sample --ckpt %s/r/last.ckpt --prompt-file %s/fifo", dir, dir);
    expect_refused(2, "copy task", "train %s/tiny.json --data %s/tiny.json --out %s/r4", dir, dir, dir);
    expect_refused(2, "--seq", "bench --seq ''");
    expect_refused(2, "--seq", "bench --seq 4096,");
    // config text: trailing garbage, a key twice, a key with a newline in it (one line still)
    write_text("trail.json", "{\"train\": {\"steps\": 3}} {\"train\": {\"steps\": 4}}");
    expect_refused(2, "invalid JSON", "train %s/trail.json --out %s/r5", dir, dir);
    write_text("twice.json", "{\"train\": {\"steps\": 3, \"steps\": 4}}");
    expect_refused(2, "train.steps appears twice", "train %s/twice.json --out %s/r5", dir, dir);
    write_text("newline.json", "{\"model\": {\"d_mo\\ndel\": 3}}");
    expect_refused(2, "unknown key", "train %s/newline.json --out %s/r5", dir, dir);
    // in range key by key, far beyond any machine together: refused before allocating
    write_text("huge.json", "{\"model\": {\"vocab\": 65536, \"d_model\": 65536, \"d_ff\": 65536, \"axial_dims\": [32768, 32768]},"
                            " \"data\": {\"seq_len\": 64}}");
    expect_refused(1, "GB", "train %s/huge.json --out %s/r6", dir, dir);
    // a validation split shorter than one sequence would score 0.000 and save best.ckpt
    char text[2000];
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    write_text("small.txt", text);
    write_text("e8.json", "{\"model\": {\"vocab\": 256, \"axial_shape\": [16, 16], \"axial_dims\": [64, 192], \"lsh_chunk\": 64},"
                          " \"data\": {\"kind\": \"enwik8\", \"seq_len\": 256}, \"train\": {\"eval_every\": 1}}");
    expect_refused(2, "validation split", "train %s/e8.json --data %s/small.txt --out %s/r7", dir, dir, dir);
    struct stat sb;
    char best[512];
    snprintf(best, sizeof(best), "%s/r7/best.ckpt", dir);
    EXPECT(stat(best, &sb) != 0, "best.ckpt written for an empty validation split");
    // two runs into one directory: the second names the first's process and writes nothing
    write_text("long.json", "{\"model\": {\"vocab\": 8, \"d_model\": 16, \"d_ff\": 16, \"n_heads\": 1, \"d_head\": 8,"
                            " \"attn_layers\": [\"lsh\"], \"lsh_chunk\": 8, \"axial_shape\": [4, 4], \"axial_dims\": [8, 8]},"
                            " \"data\": {\"kind\": \"copy\", \"seq_len\": 16}, \"train\": {\"steps\": 100000000, \"eval_every\": 0,"
                            " \"save_every\": 0, \"threads\": 1}}");
    run_cmd(NULL, 0, "(%s train %s/long.json --out %s/shared > /dev/null 2>&1 & echo $! > %s/pid)", reformer_bin(), dir, dir, dir);
    char lock[512];
    snprintf(lock, sizeof(lock), "%s/shared/.lock", dir);
    for (int i = 0; i < 100 && stat(lock, &sb) != 0; i++) usleep(50000);
    usleep(200000);
    expect_refused(1, "another run (process", "train %s/long.json --out %s/shared", dir, dir);
    run_cmd(NULL, 0, "kill -INT $(cat %s/pid); while kill -0 $(cat %s/pid) 2>/dev/null; do sleep 0.1; done", dir, dir);
    // the first run's Ctrl-C still saved its checkpoint, under its own name
    char last[512];
    snprintf(last, sizeof(last), "%s/shared/last.ckpt", dir);
    EXPECT(stat(last, &sb) == 0, "the first run saved no checkpoint");
    teardown();
}

// A transposed weight has the right number of floats in the wrong shape: refused.
void test_bad_input_safetensors_shape(void) {
    setup();
    write_text("tiny.json", TINY);
    char out[8192];
    EXPECT(run_cmd(out, sizeof(out), "%s train %s/tiny.json --out %s/r && %s export --ckpt %s/r/last.ckpt --out %s/hf",
                   reformer_bin(), dir, dir, reformer_bin(), dir, dir) == 0, "train and export: %s", out);
    // reformer.encoder.layers.0.feed_forward.dense.dense.weight is (16, 16); the embeddings (8, 16)
    run_cmd(NULL, 0, "sed -i 's/\"shape\":\\[8,16\\]/\"shape\":[16,8]/' %s/hf/model.safetensors", dir);
    char path[512];
    uint8_t bytes[16];
    for (int i = 0; i < 16; i++) bytes[i] = (uint8_t)(i % 8);  // tokens of the 8-symbol vocabulary
    snprintf(path, sizeof(path), "%s/bytes", dir);
    write_bytes(path, bytes, sizeof(bytes));
    expect_refused(1, "shaped (16, 8)", "eval --ckpt %s/hf --data %s/bytes --token-offset 0", dir, dir);
    // a NaN in the last tensor (the output bias): the loss is not a number, and says so
    run_cmd(NULL, 0, "%s export --ckpt %s/r/last.ckpt --out %s/nan && printf '\\000\\000\\300\\177' | "
                     "dd of=%s/nan/model.safetensors bs=1 seek=$(( $(stat -c %%s %s/nan/model.safetensors) - 4 )) conv=notrunc status=none",
            reformer_bin(), dir, dir, dir, dir);
    expect_refused(1, "NaN", "eval --ckpt %s/nan --data %s/bytes --token-offset 0", dir, dir);
    teardown();
}

// A safetensors file: the 8-byte header length, the header, then n bytes of data.
static void write_safetensors(const char *name, const char *header, const void *data, size_t n) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    uint64_t len = strlen(header);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(len >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, len, f);
    fwrite(data, 1, n, f);
    fclose(f);
}

// Headers that a lenient reader takes: one tensor named twice (the second entry would be
// invisible), offsets that are not whole bytes; and LSH rotations that are not numbers.
void test_bad_input_safetensors_header(void) {
    setup();
    char path[512], err[512] = "";
    float four[4] = {1, 2, 3, 4};
    write_safetensors("twice.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
                                           "\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}, "
                                           "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
                      four, 16);
    snprintf(path, sizeof(path), "%s/twice.safetensors", dir);
    Safetensors st;
    EXPECT(safetensors_open(&st, path, err, sizeof(err)) == -1 && strstr(err, "'a' appears twice"), "named twice: %s", err);
    write_safetensors("half.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0.5, 4.5]}}",
                      four, 16);
    snprintf(path, sizeof(path), "%s/half.safetensors", dir);
    float x;
    EXPECT(safetensors_open(&st, path, err, sizeof(err)) == 0, "%s", err);
    EXPECT(safetensors_read_f32(&st, "a", &x, 1, err, sizeof(err)) == -1 && strstr(err, "not whole bytes"),
           "fractional offsets: %s", err);
    safetensors_close(&st);
    // TINY has one LSH layer: 1 head of 8, 2 hashes, 4 buckets, so rotations (1, 8, 2, 2)
    write_text("tiny.json", TINY);
    char out[8192];
    EXPECT(run_cmd(out, sizeof(out), "%s train %s/tiny.json --out %s/r && %s export --ckpt %s/r/last.ckpt --out %s/hf",
                   reformer_bin(), dir, dir, reformer_bin(), dir, dir) == 0, "train and export: %s", out);
    float rot[32];
    for (int i = 0; i < 32; i++) rot[i] = (float)(i % 5) - 2.0f;
    rot[13] = 0.0f / 0.0f;
    write_safetensors("rot.safetensors", "{\"rotations.0\": {\"dtype\": \"F32\", \"shape\": [1, 8, 2, 2], "
                                         "\"data_offsets\": [0, 128]}}", rot, sizeof(rot));
    uint8_t bytes[16];
    for (int i = 0; i < 16; i++) bytes[i] = (uint8_t)(i % 8);
    snprintf(path, sizeof(path), "%s/bytes", dir);
    write_bytes(path, bytes, sizeof(bytes));
    expect_refused(1, "rotations must be finite", "eval --ckpt %s/hf --data %s/bytes --token-offset 0 --rotations %s/rot.safetensors",
                   dir, dir, dir);
    rot[13] = 1.0f / 0.0f;
    write_safetensors("rot.safetensors", "{\"rotations.0\": {\"dtype\": \"F32\", \"shape\": [1, 8, 2, 2], "
                                         "\"data_offsets\": [0, 128]}}", rot, sizeof(rot));
    expect_refused(1, "rotations must be finite", "eval --ckpt %s/r/last.ckpt --split test --rotations %s/rot.safetensors",
                   dir, dir);
    teardown();
}
