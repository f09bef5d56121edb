// checkpoint.c: save through files_create/files_commit (tmp + fsync + rename, as redis rdb.c), load with every length
// checked before use (gguf.cpp), integrity by zlib's crc32.
#include "checkpoint.h"

#include "args.h"
#include "dist.h"
#include "../data/files.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "RFRMCKPT"
#define VERSION 1u
#define ALIGN 64
#define MAX_HEADER (64u << 20)

static char *u64_text(char *buf, uint64_t x) {
    snprintf(buf, 24, "%016llx", (unsigned long long)x);
    return buf;
}

static char *header_json(const Config *cfg, const Model *m, const OptimState *opt, const TrainState *st) {
    cJSON *h = cJSON_CreateObject();
    char *cj = config_to_json(cfg);
    cJSON_AddItemToObject(h, "config", cJSON_Parse(cj));
    free(cj);
    char b[24];
    cJSON_AddNumberToObject(h, "step", (double)st->step);
    cJSON_AddStringToObject(h, "model_seed", u64_text(b, m->spec.seed));
    cJSON_AddNumberToObject(h, "n_params", (double)m->spec.n_params);
    cJSON_AddNumberToObject(h, "adam_t", opt ? (double)opt->t : -1);
    // floats of optimizer state after the parameters: Adam m and v (2n), or Adafactor's
    // factored statistics (n_v); absent in older checkpoints, which held Adam's 2n
    cJSON_AddNumberToObject(h, "opt_floats", opt ? (double)optim_whole_floats(opt) : 0);
    cJSON_AddNumberToObject(h, "ranks", st->ranks);
    cJSON_AddNumberToObject(h, "best_valid", st->best_valid);
    cJSON *rng = cJSON_AddArrayToObject(h, "data_rng");
    for (int i = 0; i < 4; i++) cJSON_AddItemToArray(rng, cJSON_CreateString(u64_text(b, st->data_rng.s[i])));
    cJSON *tensors = cJSON_AddArrayToObject(h, "tensors");
    for (int i = 0; i < m->spec.n_entries; i++) {
        const ParamEntry *e = &m->w.table[i];
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", e->name);
        cJSON_AddNumberToObject(t, "offset", (double)e->offset);
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < e->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber(e->shape[d]));
        cJSON_AddItemToArray(tensors, t);
    }
    char *text = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    return text;
}

// fwrite that also feeds the CRC
static int put(FILE *f, uLong *crc, const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t done = 0; done < n;) {  // crc32 takes uInt lengths
        size_t part = n - done > (1u << 30) ? (1u << 30) : n - done;
        *crc = crc32(*crc, c + done, (uInt)part);
        done += part;
    }
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

// The optimizer state into f, section by section (Adam's m, then v; Adafactor's v), each
// slice by slice in rank order when the ranks hold slices: every rank calls this together;
// rank 0 writes (it keeps receiving after a failed write, so no rank waits forever).
static int put_state(FILE *f, uLong *crc, const OptimState *opt, int bad) {
    int ranks = dist_size(), me = dist_rank();
    int sliced = ranks > 1 && opt->n_v != opt->whole_n_v;
    if (!sliced) return me == 0 && !bad ? (opt->m && put(f, crc, opt->m, opt->n * sizeof(float))) ||
                                              put(f, crc, opt->v, opt->n_v * sizeof(float)) : bad;
    double *len = xcalloc(2 * (size_t)ranks, sizeof(double));  // each rank's m and v floats
    len[2 * me] = opt->m ? (double)opt->n : 0;
    len[2 * me + 1] = (double)opt->n_v;
    dist_sum(len, 2 * ranks);
    float *buf = me == 0 ? xmalloc(DIST_PIECE * sizeof(float)) : NULL;  // one piece at a time
    for (int section = opt->m ? 0 : 1; section < 2; section++) {
        const float *own = section ? opt->v : opt->m;
        if (me != 0) {
            dist_send(own, (size_t)len[2 * me + section], 0);
            continue;
        }
        for (int r = 0; r < ranks; r++) {
            size_t n = (size_t)len[2 * r + section];
            for (size_t at = 0; at < n; at += DIST_PIECE) {
                size_t part = n - at < DIST_PIECE ? n - at : DIST_PIECE;
                if (r) dist_recv(buf, part, r);
                if (!bad) bad = put(f, crc, r ? buf : own + at, part * sizeof(float));
            }
        }
    }
    xfree(buf);
    xfree(len);
    return bad;
}

int checkpoint_save(const char *path, const Config *cfg, const Model *m, const OptimState *opt,
                    const TrainState *st, char *err, size_t cap) {
    int me = dist_rank(), bad = 0;
    AtomicFile a = {0};
    uLong crc = crc32(0L, Z_NULL, 0);
    if (me == 0) bad = files_create(&a, path, err, cap) ? 1 : 0;  // a.f stays NULL on failure
    if (me == 0 && !bad) {
        char *header = header_json(cfg, m, opt, st);
        uint32_t version = VERSION, hlen = (uint32_t)strlen(header);
        size_t at = 16 + hlen, pad = (ALIGN - at % ALIGN) % ALIGN;
        static const char zeros[ALIGN];
        bad = put(a.f, &crc, MAGIC, 8) || put(a.f, &crc, &version, 4) || put(a.f, &crc, &hlen, 4) ||
              put(a.f, &crc, header, hlen) || put(a.f, &crc, zeros, pad) ||
              put(a.f, &crc, m->w.params, m->spec.n_params * sizeof(float));
        free(header);
    }
    if (opt) bad = put_state(a.f, &crc, opt, bad);
    if (me == 0 && a.f) {
        uint32_t c32 = (uint32_t)crc;
        if (!bad) bad = fwrite(&c32, 4, 1, a.f) != 1;
        bad = files_commit(&a, bad, err, cap) ? 1 : 0;
    }
    // every rank learns whether rank 0 saved
    if (dist_any(bad != 0) && me != 0) return set_error(err, cap, "rank 0 could not write %s", path);
    return bad ? -1 : 0;
}

typedef struct {
    FILE *f;
    long long size;
    cJSON *header;
    size_t data_at;
    double n_params, adam_t, opt_floats;  // the header's sizes, checked against the file
} Opened;

// A whole number in [lo, hi] under key, else *ok = 0.
static double whole(const cJSON *h, const char *key, double lo, double hi, int *ok) {
    const cJSON *v = cJSON_GetObjectItem(h, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi || v->valuedouble != floor(v->valuedouble)) {
        *ok = 0;
        return 0;
    }
    return v->valuedouble;
}

// 16 hex digits (how u64_text writes a 64-bit state), else *ok = 0.
static uint64_t hex64(const cJSON *v, int *ok) {
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 16 || strspn(v->valuestring, "0123456789abcdef") != 16) {
        *ok = 0;
        return 0;
    }
    return strtoull(v->valuestring, NULL, 16);
}

// The CRC of the whole file before the last 4 bytes, against those 4 bytes: nothing in a
// header is trusted (no size, no config that allocates) before this passes.
static int whole_file_crc_ok(FILE *f, long long size, const char *path, char *err, size_t cap) {
    unsigned char *buf = malloc(1 << 20);
    if (!buf) return set_error(err, cap, "%s: out of memory", path);
    uLong crc = crc32(0L, Z_NULL, 0);
    int bad = fseeko(f, 0, SEEK_SET) != 0;
    for (long long left = size - 4; !bad && left > 0;) {
        size_t part = left < (1 << 20) ? (size_t)left : (1 << 20);
        bad = fread(buf, 1, part, f) != part;
        if (!bad) crc = crc32(crc, buf, (uInt)part);
        left -= (long long)part;
    }
    uint32_t stored = 0;
    if (!bad) bad = fread(&stored, 4, 1, f) != 1;
    free(buf);
    if (bad) return set_error(err, cap, "%s: read error", path);
    if (stored != (uint32_t)crc)
        return set_error(err, cap, "%s: CRC mismatch (stored %08x, computed %08x): the file is corrupt", path, stored,
                         (unsigned)crc);
    return 0;
}

static int open_checked(const char *path, Opened *o, char *err, size_t cap) {
    memset(o, 0, sizeof(*o));
    o->f = files_open(path, &o->size, err, cap);
    if (!o->f) return -1;
    unsigned char head[16];
    if (o->size < 20 || fread(head, 1, 16, o->f) != 16)
        return set_error(err, cap, "%s: truncated: %lld bytes, a checkpoint has at least 20", path, o->size);
    if (memcmp(head, MAGIC, 8)) return set_error(err, cap, "%s: not a reformer checkpoint (bad magic)", path);
    uint32_t version, hlen;
    memcpy(&version, head + 8, 4);
    memcpy(&hlen, head + 12, 4);
    if (version != VERSION) return set_error(err, cap, "%s: checkpoint version %u, this build reads %u", path, version, VERSION);
    if (hlen > MAX_HEADER || 16 + (long long)hlen + 4 > o->size)
        return set_error(err, cap, "%s: header of %u bytes does not fit in the file's %lld", path, hlen, o->size);
    char *text = malloc((size_t)hlen + 1);
    if (!text || fread(text, 1, hlen, o->f) != hlen) {
        free(text);
        return set_error(err, cap, "%s: cannot read the header", path);
    }
    text[hlen] = '\0';
    o->header = strlen(text) == hlen ? cJSON_ParseWithOpts(text, NULL, 1) : NULL;
    free(text);
    if (!o->header || !cJSON_IsObject(cJSON_GetObjectItem(o->header, "config")))
        return set_error(err, cap, "%s: header is not valid JSON", path);
    size_t at = 16 + hlen;
    o->data_at = at + (ALIGN - at % ALIGN) % ALIGN;
    // the sizes the header gives must account for the file exactly (a cut file says so here)
    int ok = 1;
    double n = o->n_params = whole(o->header, "n_params", 1, 1e12, &ok);
    double t = o->adam_t = whole(o->header, "adam_t", -1, 1e15, &ok);
    const cJSON *of = cJSON_GetObjectItem(o->header, "opt_floats");
    // older files do not say: Adam's m and v
    double opt = o->opt_floats = t < 0 ? 0 : of ? whole(o->header, "opt_floats", 0, 4 * n, &ok) : 2 * n;
    if (!ok) return set_error(err, cap, "%s: header sizes (n_params, adam_t, opt_floats) are missing or malformed", path);
    long long bytes = ((long long)n + (long long)opt) * 4;
    if ((long long)o->data_at + bytes + 4 != o->size)
        return set_error(err, cap, "%s: tensors need %lld bytes after offset %zu plus a 4-byte CRC; the file has %lld in "
                                   "all (truncated or padded)", path, bytes, o->data_at, o->size);
    // and nothing in the header is used (the config builds a model) before the CRC agrees
    return whole_file_crc_ok(o->f, o->size, path, err, cap);
}

static void close_opened(Opened *o) {
    if (o->f) fclose(o->f);
    cJSON_Delete(o->header);
}

int checkpoint_read_config(const char *path, Config *cfg, char *err, size_t cap) {
    Opened o;
    int rc = open_checked(path, &o, err, cap);
    if (!rc) {
        char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(o.header, "config"));
        config_default(cfg);
        char inner[512];
        rc = config_parse(text, path, cfg, inner, sizeof(inner));
        if (rc) set_error(err, cap, "%s: stored config: %s", path, inner);
        free(text);
    }
    close_opened(&o);
    return rc;
}

// What the header says beyond the sizes open_checked verified.
typedef struct {
    double step, best;
    Rng data_rng;
    uint64_t model_seed;
    int ranks;
} Fields;

static int read_fields(const Opened *o, Fields *fl, const char *path, char *err, size_t cap) {
    int ok = 1;
    fl->step = whole(o->header, "step", 0, 1e15, &ok);
    const cJSON *bv = cJSON_GetObjectItem(o->header, "best_valid");
    fl->best = cJSON_IsNumber(bv) && bv->valuedouble >= 0 ? bv->valuedouble : (ok = 0);
    const cJSON *rng = cJSON_GetObjectItem(o->header, "data_rng");
    for (int i = 0; i < 4; i++) fl->data_rng.s[i] = hex64(cJSON_GetArrayItem(rng, i), &ok);
    fl->model_seed = hex64(cJSON_GetObjectItem(o->header, "model_seed"), &ok);
    const cJSON *ranks = cJSON_GetObjectItem(o->header, "ranks");  // absent before data-parallel runs: 1
    fl->ranks = cJSON_IsNumber(ranks) && ranks->valuedouble >= 1 && ranks->valuedouble <= 1e6 ? (int)ranks->valuedouble : 1;
    if (!ok || !cJSON_IsArray(cJSON_GetObjectItem(o->header, "tensors")) || !cJSON_IsArray(rng) || cJSON_GetArraySize(rng) != 4)
        return set_error(err, cap, "%s: a header field (step, adam_t, n_params, best_valid, data_rng, model_seed) is "
                                   "missing or malformed", path);
    return 0;
}

// The tensor table and the optimizer state's size against the model and opt.
static int matches_model(const Opened *o, const Model *m, const OptimState *opt, const char *path, char *err, size_t cap) {
    const cJSON *tensors = cJSON_GetObjectItem(o->header, "tensors");
    if (o->n_params != (double)m->spec.n_params)
        return set_error(err, cap, "%s: holds %.0f parameters, the model has %zu", path, o->n_params, m->spec.n_params);
    if (cJSON_GetArraySize(tensors) != m->spec.n_entries)
        return set_error(err, cap, "%s: %d tensors, the model has %d", path, cJSON_GetArraySize(tensors), m->spec.n_entries);
    for (int i = 0; i < m->spec.n_entries; i++) {
        const cJSON *e = cJSON_GetArrayItem(tensors, i), *name = cJSON_GetObjectItem(e, "name");
        const cJSON *off = cJSON_GetObjectItem(e, "offset");
        if (!cJSON_IsString(name) || strcmp(name->valuestring, m->w.table[i].name) ||
            !cJSON_IsNumber(off) || off->valuedouble != (double)m->w.table[i].offset)
            return set_error(err, cap, "%s: tensor %d is not '%s' at offset %zu", path, i, m->w.table[i].name, m->w.table[i].offset);
    }
    if (opt && o->adam_t < 0) return set_error(err, cap, "%s: has no optimizer state to resume from", path);
    if (opt && o->opt_floats != (double)optim_whole_floats(opt))
        return set_error(err, cap, "%s: its optimizer state (%.0f floats) is not this run's %s (train.optimizer)", path,
                         o->opt_floats, opt->m ? "Adam" : "Adafactor");
    return 0;
}

// open_checked matched the sizes with the file and its CRC with its bytes: the floats, with
// this state's slice of each optimizer section (the whole of it in one process).
static int read_data(const Opened *o, Model *m, OptimState *opt) {
    FILE *f = o->f;
    int bad = fseeko(f, (off_t)o->data_at, SEEK_SET) != 0 || fread(m->w.params, 4, m->spec.n_params, f) != m->spec.n_params;
    if (!bad && opt && opt->m)
        bad = fseeko(f, (off_t)(o->data_at + 4 * (m->spec.n_params + opt->m_at)), SEEK_SET) != 0 ||
              fread(opt->m, 4, opt->n, f) != opt->n;
    if (!bad && opt)
        bad = fseeko(f, (off_t)(o->data_at + 4 * (m->spec.n_params + (opt->m ? opt->whole_n : 0) + opt->v_at)), SEEK_SET) != 0 ||
              fread(opt->v, 4, opt->n_v, f) != opt->n_v;
    return bad ? -1 : 0;
}

int checkpoint_load(const char *path, Model *m, OptimState *opt, TrainState *st, char *err, size_t cap) {
    Opened o;
    Fields fl;
    int rc = open_checked(path, &o, err, cap);
    if (!rc) rc = read_fields(&o, &fl, path, err, cap);
    if (!rc) rc = matches_model(&o, m, opt, path, err, cap);
    if (!rc && read_data(&o, m, opt)) rc = set_error(err, cap, "%s: read error", path);
    if (!rc) {
        if (opt) opt->t = (long long)o.adam_t;
        if (st) {
            st->step = (long long)fl.step;
            st->best_valid = fl.best;
            st->data_rng = fl.data_rng;
            st->ranks = fl.ranks;
        }
        m->spec.seed = fl.model_seed;
    }
    close_opened(&o);
    return rc;
}
