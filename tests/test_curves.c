// test_curves.c: what a run leaves to look at. The bytes of our TensorBoard event files,
// read back by a decoder of this file's own (record framing, masked CRC-32C computed bit by
// bit, protobuf fields), a training run's scalars against its metrics.jsonl, and the SVG
// curves of train and `reformer plot`.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cmd/tensorboard.h"
#include "test.h"

// CRC-32C one bit at a time (independent of the table in cmd/tensorboard.c)
static uint32_t crc32c_bitwise(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
    }
    return ~c;
}

static uint32_t unmask(uint32_t m) {
    uint32_t r = m - 0xa282ead8u;
    return (r >> 17) | (r << 15);
}

static uint64_t varint(const uint8_t **p, const uint8_t *end) {
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 127) << shift;
        if (!(b & 128)) break;
    }
    return v;
}

typedef struct {
    double wall;
    long long step;
    char version[32];
    int session_start;
    char tag[64];
    float value;
    int has_value;
} Event;

// Decodes one Event; unknown fields fail the test.
static void decode_event(const uint8_t *p, const uint8_t *end, Event *e) {
    memset(e, 0, sizeof(*e));
    while (p < end) {
        uint64_t key = varint(&p, end);
        int field = (int)(key >> 3), wire = (int)(key & 7);
        if (field == 1 && wire == 1) {
            memcpy(&e->wall, p, 8);
            p += 8;
        } else if (field == 2 && wire == 0) {
            e->step = (long long)varint(&p, end);
        } else if (wire == 2) {
            uint64_t len = varint(&p, end);
            const uint8_t *q = p, *qe = p + len;
            if (field == 3) snprintf(e->version, sizeof(e->version), "%.*s", (int)len, (const char *)q);
            else if (field == 6) {
                EXPECT(varint(&q, qe) == (1 << 3) && varint(&q, qe) == 1, "session_log is not START");
                e->session_start = 1;
            } else if (field == 5) {  // Summary { value (1) { tag (1), simple_value (2) } }
                EXPECT(varint(&q, qe) == (1 << 3 | 2), "summary without a value");
                uint64_t vl = varint(&q, qe);
                const uint8_t *ve = q + vl;
                while (q < ve) {
                    uint64_t k = varint(&q, ve);
                    if (k == (1 << 3 | 2)) {
                        uint64_t tl = varint(&q, ve);
                        snprintf(e->tag, sizeof(e->tag), "%.*s", (int)tl, (const char *)q);
                        q += tl;
                    } else if (k == (2 << 3 | 5)) {
                        memcpy(&e->value, q, 4);
                        q += 4;
                        e->has_value = 1;
                    } else {
                        EXPECT(0, "unknown Summary.Value field key %llu", (unsigned long long)k);
                        return;
                    }
                }
            } else {
                EXPECT(0, "unknown Event field %d", field);
            }
            p += len;
        } else {
            EXPECT(0, "unknown Event field %d wire %d", field, wire);
            return;
        }
    }
}

// Every record of the file, framing and CRCs checked.
static int read_events(const char *path, Event *out, int cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int n = 0;
    uint8_t head[12], tail[4], data[4096];
    while (fread(head, 1, 12, f) == 12) {
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = len << 8 | head[i];
        uint32_t lc = head[8] | head[9] << 8 | head[10] << 16 | (uint32_t)head[11] << 24;
        EXPECT(unmask(lc) == crc32c_bitwise(head, 8), "record %d: length CRC", n);
        if (len > sizeof(data) || fread(data, 1, len, f) != len || fread(tail, 1, 4, f) != 4) {
            EXPECT(0, "record %d: truncated", n);
            break;
        }
        uint32_t dc = tail[0] | tail[1] << 8 | tail[2] << 16 | (uint32_t)tail[3] << 24;
        EXPECT(unmask(dc) == crc32c_bitwise(data, len), "record %d: data CRC", n);
        if (n < cap) decode_event(data, data + len, &out[n]);
        n++;
    }
    fclose(f);
    return n;
}

// The event files of dir in name order (at most 4).
static int event_files(const char *dir, char names[][512]) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls %s | grep tfevents", dir);
    FILE *p = popen(cmd, "r");
    int n = 0;
    char line[256];
    while (p && n < 4 && fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(names[n++], 512, "%s/%s", dir, line);
    }
    if (p) pclose(p);
    return n;
}

void test_tensorboard_crc32c_and_records(void) {
    // RFC 3720's check values
    EXPECT(events_crc32c((const uint8_t *)"123456789", 9) == 0xe3069283u, "crc32c of 123456789");
    uint8_t zeros[32] = {0};
    EXPECT(events_crc32c(zeros, 32) == 0x8a9136aau, "crc32c of 32 zeros");
    EXPECT(crc32c_bitwise(zeros, 32) == 0x8a9136aau, "the test's own crc32c");
    char dir[] = "/tmp/reformer-tb-XXXXXX", err[256];
    if (!mkdtemp(dir)) abort();
    EventWriter w;
    EXPECT(events_open(&w, dir, -1, err, sizeof(err)) == 0, "open: %s", err);
    EXPECT(events_scalar(&w, "train/loss", 7, 2.5f) == 0, "scalar");
    EXPECT(events_scalar(&w, "valid/accuracy", 300, 0.995f) == 0, "scalar");
    events_close(&w);
    char files[4][512];
    Event ev[8];
    EXPECT(event_files(dir, files) == 1, "one event file");
    EXPECT(read_events(files[0], ev, 8) == 3, "three records");
    EXPECT(!strcmp(ev[0].version, "brain.Event:2") && ev[0].wall > 1.7e9, "version record: '%s' at %f", ev[0].version, ev[0].wall);
    EXPECT(!strcmp(ev[1].tag, "train/loss") && ev[1].step == 7 && ev[1].value == 2.5f && ev[1].has_value, "scalar 1");
    EXPECT(!strcmp(ev[2].tag, "valid/accuracy") && ev[2].step == 300 && ev[2].value == 0.995f, "scalar 2");
    run_cmd(NULL, 0, "rm -rf %s", dir);
}

static const char *TINY =
    "{\"model\": {\"vocab\": 8, \"d_model\": 16, \"d_ff\": 16, \"n_heads\": 1, \"d_head\": 8, \"attn_layers\": [\"lsh\"],"
    " \"n_hashes\": 2, \"n_buckets\": 4, \"lsh_chunk\": 8, \"axial_shape\": [4, 4], \"axial_dims\": [8, 8]},"
    " \"data\": {\"kind\": \"copy\", \"seq_len\": 16}, \"train\": {\"batch\": 2, \"steps\": 6, \"eval_every\": 3,"
    " \"log_every\": 1, \"threads\": 1}}";

// A fresh directory from the template dir (mkdtemp) holding TINY as tiny.json, at path.
static void tiny_config(char *dir, char *path, size_t cap) {
    if (!mkdtemp(dir)) abort();
    snprintf(path, cap, "%s/tiny.json", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(TINY, f) == EOF || fclose(f) != 0) abort();
}

// train writes the scalars of metrics.jsonl; a resumed run writes a second file that opens
// with a restart record at the step it continues from.
void test_tensorboard_training_run(void) {
    char dir[] = "/tmp/reformer-tb-XXXXXX", path[600], out[8192];
    tiny_config(dir, path, sizeof(path));
    FILE *f;
    int rc = run_cmd(out, sizeof(out), "%s train %s --steps 3 --out %s/run && sleep 1 && %s train %s --resume %s/run/last.ckpt --out %s/run",
                     reformer_bin(), path, dir, reformer_bin(), path, dir, dir);
    EXPECT(rc == 0, "train: %s", out);
    char files[4][512];
    EXPECT(event_files(dir, files) == 0, "event files outside the run directory");
    snprintf(path, sizeof(path), "%s/run", dir);
    int nf = event_files(path, files);
    EXPECT(nf == 2, "%d event files, want 2 (first run, resumed run)", nf);
    // metrics.jsonl's losses, as %.17g doubles
    double loss[8] = {0};
    snprintf(path, sizeof(path), "%s/run/metrics.jsonl", dir);
    f = fopen(path, "r");
    char line[1024];
    int nl = 0;
    double last_elapsed = -1;
    while (f && fgets(line, sizeof(line), f) && nl < 8) {
        long long step;
        double l;
        if (sscanf(line, "{\"step\": %lld, \"loss\": %lf", &step, &l) == 2 && step >= 1 && step <= 6) loss[step - 1] = l, nl++;
        const char *e = strstr(line, "\"elapsed_s\": ");
        double el = e ? atof(e + 13) : -2;
        EXPECT(el >= last_elapsed, "elapsed_s goes back at the resume: %s", line);  // a resumed run is one run
        last_elapsed = el;
    }
    if (f) fclose(f);
    EXPECT(nl == 6, "%d metrics lines", nl);
    int seen = 0, valid = 0, restart = 0;
    for (int i = 0; i < nf; i++) {
        Event ev[64];
        int n = read_events(files[i], ev, 64);
        EXPECT(n > 1 && !strcmp(ev[0].version, "brain.Event:2"), "%s: no version record", files[i]);
        for (int k = 1; k < n && k < 64; k++) {
            if (ev[k].session_start) {
                restart++;
                EXPECT(i == 1 && k == 1 && ev[k].step == 4, "restart record at step %lld (file %d, record %d)", ev[k].step, i, k);
            }
            if (!strcmp(ev[k].tag, "train/loss")) {
                EXPECT(ev[k].step >= 1 && ev[k].step <= 6 && ev[k].value == (float)loss[ev[k].step - 1],
                       "train/loss at step %lld: %.9g vs metrics %.9g", ev[k].step, ev[k].value, loss[ev[k].step - 1]);
                seen++;
            }
            valid += !strcmp(ev[k].tag, "valid/loss");
        }
    }
    EXPECT(seen == 6 && valid == 2 && restart == 1, "train/loss %d (want 6), valid/loss %d (want 2), restarts %d (want 1)",
           seen, valid, restart);
    run_cmd(NULL, 0, "rm -rf %s", dir);
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

// train draws DIR/curves.svg at each validation; `reformer plot` draws several runs in one.
void test_curves_svg(void) {
    char dir[] = "/tmp/reformer-svg-XXXXXX", path[600], out[8192];
    tiny_config(dir, path, sizeof(path));
    int rc = run_cmd(out, sizeof(out), "%s train %s --out %s/a && %s train %s --seed 2 --out %s/b", reformer_bin(), path, dir,
                     reformer_bin(), path, dir);
    EXPECT(rc == 0, "train: %s", out);
    char svg[65536];
    run_cmd(svg, sizeof(svg), "cat %s/a/curves.svg", dir);
    EXPECT(!strncmp(svg, "<svg", 4) && count(svg, "<polyline") == 2 && strstr(svg, "validation accuracy") && strstr(svg, "</svg>"),
           "train's curves.svg: %.300s", svg);
    rc = run_cmd(out, sizeof(out), "%s plot %s/a %s/b/metrics.jsonl --x tokens --out %s/both.svg && cat %s/both.svg", reformer_bin(),
                 dir, dir, dir, dir);
    EXPECT(rc == 0 && count(out, "<polyline") == 4 && strstr(out, ">tokens<") && strstr(out, "/b/metrics.jsonl<"),
           "plot of two runs: %.400s", out);
    // LABEL=PATH names a run in the legend
    rc = run_cmd(out, sizeof(out), "%s plot first=%s/a second=%s/b/metrics.jsonl --out %s/named.svg >/dev/null && cat %s/named.svg",
                 reformer_bin(), dir, dir, dir, dir);
    EXPECT(rc == 0 && count(out, "<polyline") == 4 && strstr(out, ">first<") && strstr(out, ">second<") && !strstr(out, dir),
           "plot with labels: %.400s", out);
    rc = run_cmd(out, sizeof(out), "%s plot %s/nope --out %s/x.svg", reformer_bin(), dir, dir);
    EXPECT(rc == 1 && strstr(out, "cannot open") && strchr(out, '\n') == out + strlen(out) - 1, "missing run: %d %s", rc, out);
    run_cmd(NULL, 0, "rm -rf %s", dir);
}
