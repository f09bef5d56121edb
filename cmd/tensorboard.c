// tensorboard.c: records, CRC-32C and the few protobuf fields an Event of scalars needs.
#include "tensorboard.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../core/common.h"

uint32_t events_crc32c(const uint8_t *p, size_t n) {
    static uint32_t table[256];
    if (!table[1])  // the reflected Castagnoli polynomial, a byte at a time
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 255] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

// protobuf: a varint, a field key, a length-delimited field
static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 127) | (v > 127 ? 128 : 0));
        v >>= 7;
    } while (v);
    return n;
}

static size_t put_bytes(uint8_t *p, int field, const void *data, size_t len) {
    size_t n = put_varint(p, (uint64_t)field << 3 | 2);
    n += put_varint(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}

static int write_record(EventWriter *w, const uint8_t *data, size_t len) {
    uint8_t head[12];
    uint64_t l = len;
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)(l >> (8 * i));
    uint32_t lc = masked(events_crc32c(head, 8)), dc = masked(events_crc32c(data, len));
    for (int i = 0; i < 4; i++) head[8 + i] = (uint8_t)(lc >> (8 * i));
    uint8_t tail[4];
    for (int i = 0; i < 4; i++) tail[i] = (uint8_t)(dc >> (8 * i));
    int bad = fwrite(head, 1, 12, w->f) != 12 || fwrite(data, 1, len, w->f) != len || fwrite(tail, 1, 4, w->f) != 4;
    return bad || fflush(w->f) != 0 ? -1 : 0;
}

// An Event with wall_time and step, then `body` (already-encoded fields).
static int write_event(EventWriter *w, long long step, const uint8_t *body, size_t len) {
    uint8_t ev[512];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    double wall = (double)tv.tv_sec + tv.tv_usec * 1e-6;
    size_t n = 0;
    ev[n++] = 1 << 3 | 1;  // wall_time: fixed64
    memcpy(ev + n, &wall, 8);
    n += 8;
    ev[n++] = 2 << 3 | 0;  // step: varint
    n += put_varint(ev + n, (uint64_t)step);
    if (n + len > sizeof(ev)) return -1;
    memcpy(ev + n, body, len);
    return write_record(w, ev, n + len);
}

// A fresh run in a used directory: the old run's event files go, as its metrics.jsonl is
// rewritten (TensorBoard would draw both runs as one).
static void remove_old_events(const char *dir) {
    DIR *d = opendir(dir);
    char path[4096];
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, "events.out.tfevents.", 20) &&
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
            unlink(path);
    if (d) closedir(d);
}

int events_open(EventWriter *w, const char *dir, long long resume_step, char *err, size_t cap) {
    char host[256] = "localhost", path[4096];
    if (resume_step < 0) remove_old_events(dir);
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    // seconds and the process id: a resumed run in the same second gets a file of its own
    snprintf(path, sizeof(path), "%s/events.out.tfevents.%ld.%s.%ld", dir, (long)time(NULL), host, (long)getpid());
    w->f = fopen(path, "wb");
    if (!w->f) return set_error(err, cap, "%s: cannot write: %s", path, strerror(errno));
    uint8_t body[64];
    const char *version = "brain.Event:2";
    int bad = write_event(w, 0, body, put_bytes(body, 3, version, strlen(version)));
    if (!bad && resume_step >= 0) {
        const uint8_t start[2] = {1 << 3 | 0, 1};  // SessionLog { status: START }
        bad = write_event(w, resume_step + 1, body, put_bytes(body, 6, start, 2));
    }
    if (bad) {
        events_close(w);
        return set_error(err, cap, "%s: write failed", path);
    }
    return 0;
}

int events_scalar(EventWriter *w, const char *tag, long long step, float value) {
    if (!w->f) return 0;
    uint8_t val[256], sum[300], body[320];
    size_t tl = strlen(tag) < 200 ? strlen(tag) : 200;
    size_t n = put_bytes(val, 1, tag, tl);
    val[n++] = 2 << 3 | 5;  // simple_value: fixed32
    memcpy(val + n, &value, 4);
    n += 4;
    size_t s = put_bytes(sum, 1, val, n);           // Summary.value
    return write_event(w, step, body, put_bytes(body, 5, sum, s));  // Event.summary
}

void events_close(EventWriter *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
}
