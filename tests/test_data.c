// test_data.c: archive readers and the text dataset, on fixtures built here with zlib.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../cmd/config.h"
#include "../cmd/evaluate.h"
#include "../core/common.h"
#include "../data/archive.h"
#include "../data/dataset.h"
#include "test.h"

static void put32(uint8_t *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }

static uint8_t *text(size_t n) {
    uint8_t *t = malloc(n);
    for (size_t i = 0; i < n; i++) t[i] = (uint8_t)("<page>wiki text </page>\n"[i % 24] + (i / 977) % 3);
    return t;
}

// A one-member zip; method 8 deflates (raw), 0 stores. Returns its size.
static size_t make_zip(const char *path, const char *name, const uint8_t *data, size_t n, int method) {
    uint8_t *comp = malloc(n + 1024);
    size_t clen = n;
    if (method == 8) {
        z_stream z;
        memset(&z, 0, sizeof(z));
        deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        z.next_in = (uint8_t *)data;
        z.avail_in = (uInt)n;
        z.next_out = comp;
        z.avail_out = (uInt)(n + 1024);
        deflate(&z, Z_FINISH);
        clen = z.total_out;
        deflateEnd(&z);
    } else {
        memcpy(comp, data, n);
    }
    uint32_t crc = (uint32_t)crc32(0, data, (uInt)n);
    size_t nl = strlen(name);
    uint8_t lh[30] = {0}, cd[46] = {0}, eocd[22] = {0};
    put32(lh, 0x04034b50); put16(lh + 4, 20); put16(lh + 8, method); put32(lh + 14, crc);
    put32(lh + 18, (uint32_t)clen); put32(lh + 22, (uint32_t)n); put16(lh + 26, (uint16_t)nl);
    put32(cd, 0x02014b50); put16(cd + 6, 20); put16(cd + 10, method); put32(cd + 16, crc);
    put32(cd + 20, (uint32_t)clen); put32(cd + 24, (uint32_t)n); put16(cd + 28, (uint16_t)nl);
    size_t cd_off = 30 + nl + clen;
    put32(eocd, 0x06054b50); put16(eocd + 8, 1); put16(eocd + 10, 1);
    put32(eocd + 12, (uint32_t)(46 + nl)); put32(eocd + 16, (uint32_t)cd_off);
    FILE *f = fopen(path, "wb");
    fwrite(lh, 1, 30, f); fwrite(name, 1, nl, f); fwrite(comp, 1, clen, f);
    fwrite(cd, 1, 46, f); fwrite(name, 1, nl, f); fwrite(eocd, 1, 22, f);
    fclose(f);
    free(comp);
    return cd_off + 46 + nl + 22;
}

static int read_back(const char *path, const uint8_t *want, size_t n, char *err) {
    uint8_t *got = NULL;
    size_t len = 0;
    int kind;
    if (archive_read_all(path, "enwik8", 0, 1 << 26, &got, &len, &kind, err, 512)) return -1;
    int same = len == n && memcmp(got, want, n) == 0;
    free(got);
    return same ? kind : -2;
}

static void flip_byte(const char *path, long at) {
    FILE *f = fopen(path, "r+b");
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

void test_archive_formats_and_corruption(void) {
    char dir[] = "/tmp/reformer-data-XXXXXX", p[256], err[512];
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    size_t n = 200000;
    uint8_t *t = text(n);
    // raw
    snprintf(p, sizeof(p), "%s/enwik8", dir);
    FILE *f = fopen(p, "wb");
    fwrite(t, 1, n, f);
    fclose(f);
    EXPECT(read_back(p, t, n, err) == ARCHIVE_RAW, "raw: %s", err);
    // gzip
    snprintf(p, sizeof(p), "%s/enwik8.gz", dir);
    gzFile g = gzopen(p, "wb");
    gzwrite(g, t, (unsigned)n);
    gzclose(g);
    EXPECT(read_back(p, t, n, err) == ARCHIVE_GZIP, "gzip: %s", err);
    // zip, deflated and stored
    snprintf(p, sizeof(p), "%s/enwik8.zip", dir);
    size_t zsize = make_zip(p, "enwik8", t, n, 8);
    EXPECT(read_back(p, t, n, err) == ARCHIVE_ZIP, "zip deflated: %s", err);
    char stored[256];
    snprintf(stored, sizeof(stored), "%s/stored.zip", dir);
    make_zip(stored, "enwik8", t, n, 0);
    EXPECT(read_back(stored, t, n, err) == ARCHIVE_ZIP, "zip stored: %s", err);
    // corruptions, each one line naming the file
    char bad[256];
    snprintf(bad, sizeof(bad), "%s/bad.zip", dir);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp %s %s", stored, bad);
    EXPECT(system(cmd) == 0, "cp");
    flip_byte(bad, 30 + 6 + 1000);  // a byte of the stored member
    EXPECT(read_back(bad, t, n, err) == -1 && strstr(err, "CRC mismatch") && strstr(err, bad), "bad CRC: %s", err);
    snprintf(cmd, sizeof(cmd), "head -c %zu %s > %s", zsize / 2, p, bad);
    EXPECT(system(cmd) == 0, "head");
    EXPECT(read_back(bad, t, n, err) == -1 && strstr(err, "truncated"), "truncated zip: %s", err);
    snprintf(cmd, sizeof(cmd), "cp %s %s", p, bad);
    EXPECT(system(cmd) == 0, "cp");
    flip_byte(bad, (long)(zsize - 22 - 46 - 6 + 24));  // declared uncompressed size in the central directory
    EXPECT(read_back(bad, t, n, err) == -1 && (strstr(err, "declare") || strstr(err, "limit")), "size lie: %s", err);
    snprintf(bad, sizeof(bad), "%s/bad.gz", dir);
    snprintf(cmd, sizeof(cmd), "f=%s/enwik8.gz; head -c $(( $(stat -c %%s $f) / 2 )) $f > %s", dir, bad);
    EXPECT(system(cmd) == 0, "head");
    EXPECT(read_back(bad, t, n, err) == -1 && strstr(err, "truncated"), "truncated gzip: %s", err);
    uint8_t *got = NULL;
    size_t len;
    int kind;
    EXPECT(archive_read_all(p, "other", 0, 1 << 26, &got, &len, &kind, err, sizeof(err)) == -1 &&
               strstr(err, "no member 'other'"), "missing member: %s", err);
    EXPECT(archive_read_all(p, "other", 1, 1 << 26, &got, &len, &kind, err, sizeof(err)) == 0 && len == n &&
               memcmp(got, t, n) == 0, "the only file of a zip as a fallback: %s", err);
    free(got);
    EXPECT(archive_read_all(p, "enwik8", 0, 1000, &got, &len, &kind, err, sizeof(err)) == -1 &&
               strstr(err, "limit"), "limit: %s", err);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
    free(t);
}

void test_text_splits_windows_and_uniform_bits(void) {
    char dir[] = "/tmp/reformer-data-XXXXXX", p[256], err[512];
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    size_t n = 20011;
    uint8_t *t = text(n);
    snprintf(p, sizeof(p), "%s/e.zip", dir);
    make_zip(p, "enwik8", t, n, 8);
    Dataset d;
    DataConfig dc = {.kind = DATA_ENWIK8};
    snprintf(dc.path, sizeof(dc.path), "%s", p);
    EXPECT(dataset_open(&d, &dc, 256, 1, err, sizeof(err)) == 0, "open: %s", err);
    EXPECT(d.proportional && d.count[0] + d.count[1] + d.count[2] == n && d.count[1] == n / 20 &&
               d.start[2] == d.count[0] + d.count[1], "splits %zu %zu %zu", d.count[0], d.count[1], d.count[2]);
    // evaluation windows predict every byte of the split after its first, once
    int T = 64;
    char *seen = calloc(d.count[1], 1);
    int tok[64];
    size_t w = dataset_eval_windows(&d, SPLIT_VALID, T);
    for (size_t k = 0; k < w; k++) {
        int skip;
        dataset_eval_window(&d, SPLIT_VALID, T, k, tok, (SeqMeta){0}, &skip, err, sizeof(err));
        size_t start = k * (T - 1);
        if (start + T > d.count[1]) start = d.count[1] - T;
        EXPECT(tok[5] == t[d.start[1] + start + 5], "window %zu content", k);
        for (int j = 1 + skip; j < T; j++) seen[start + j]++;
    }
    int once = 1;
    for (size_t i = 1; i < d.count[1]; i++) once &= seen[i] == 1;
    EXPECT(once && seen[0] == 0, "labels not covered exactly once");
    // training windows are byte windows of the train split: with a text whose bytes
    // count up, a window's first byte tells its offset
    for (size_t i = 0; i < d.count[0]; i++) d.bytes[i] = (uint8_t)(i % 251);
    Rng r;
    rng_seed(&r, 1);
    int *bt = malloc(sizeof(int) * 4 * T);
    int ok = 1;
    for (int i = 0; i < 500; i++) {
        dataset_train_batch(&d, bt, (SeqMeta){0}, 4, 0, 4, T, &r, err, sizeof(err));
        for (int b = 0; b < 4; b++)
            for (int j = 1; j < T; j++) ok &= bt[b * T + j] == (bt[b * T + j - 1] + 1) % 251;
    }
    EXPECT(ok, "a training window is not consecutive train bytes");
    // a uniform model (zero LM head) scores exactly 8 bits per character
    Config cfg;
    config_default(&cfg);
    cfg.model.vocab = 256;
    cfg.model.d_model = 16;
    cfg.model.d_ff = 16;
    cfg.model.n_heads = 2;
    cfg.model.d_head = 8;
    cfg.model.n_layers = 1;
    cfg.model.axial_shape[0] = 8;
    cfg.model.axial_shape[1] = 8;
    cfg.model.axial_dims[0] = 8;
    cfg.model.axial_dims[1] = 8;
    cfg.model.lsh_chunk = 16;
    cfg.data.kind = DATA_ENWIK8;
    cfg.data.seq_len = T;
    Model m;
    model_init(&m, &cfg.model, 3, T, 1);
    memset(m.w.p.head.w, 0, (size_t)256 * 32 * 4);
    memset(m.w.p.head.b, 0, 256 * 4);
    EvalResult res;
    EXPECT(evaluate(&m, &cfg, &d, SPLIT_VALID, 0, 0, NULL, &res, NULL, NULL, err, sizeof(err)) == 0, "evaluate: %s", err);
    EXPECT(fabs(res.bits - 8.0) < 1e-5 && res.tokens == (long long)d.count[1] - 1,
           "uniform: %.6f bits over %lld tokens (split %zu)", res.bits, res.tokens, d.count[1]);
    model_free(&m);
    dataset_close(&d);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
    free(t);
    free(seen);
    free(bt);
}
