// test_imagenet.c: the ImageNet 64x64 reader on .npz / nested zip / ZIP64 fixtures built
// here with zlib, its corruption errors, the training order, bits per dim, and PNG output.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../cmd/config.h"
#include "../cmd/evaluate.h"
#include "../core/common.h"
#include "../data/archive.h"
#include "../data/dataset.h"
#include "../data/imagenet.h"
#include "../data/png.h"
#include "test.h"

// ---- a zip writer for fixtures: members stored or deflated, ZIP64 on request ----
typedef struct {
    uint8_t *buf, *cd;
    size_t len, cd_len;
    int n;
} ZipOut;

static void grow_put(uint8_t **b, size_t *len, const void *src, size_t n) {
    *b = realloc(*b, *len + n);
    memcpy(*b + *len, src, n);
    *len += n;
}
static void le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t deflate_raw(const uint8_t *src, size_t n, uint8_t **out) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, (uLong)n);
    *out = malloc(cap);
    z.next_in = (uint8_t *)src;
    z.avail_in = (uInt)n;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t got = z.total_out;
    deflateEnd(&z);
    return got;
}

// zip64: sizes and offset go in ZIP64 extra fields (0xffffffff in the 32-bit fields), as
// numpy's savez writes members (force_zip64) and as archives over 4 GB need.
// declared_usize != 0 lies about the size (the zip bomb fixture).
static void zip_add(ZipOut *z, const char *name, const uint8_t *data, size_t n, int method, int zip64,
                    size_t declared_usize) {
    uint8_t *comp = NULL;
    size_t clen = n;
    if (method == 8) clen = deflate_raw(data, n, &comp);
    uint32_t crc = (uint32_t)crc32(0, data, (uInt)n);
    size_t usize = declared_usize ? declared_usize : n, nl = strlen(name), off = z->len;
    uint8_t lh[30] = {0}, x[20] = {0};
    le(lh, 0x04034b50, 4); le(lh + 4, zip64 ? 45 : 20, 2); le(lh + 8, method, 2); le(lh + 14, crc, 4);
    le(lh + 18, zip64 ? 0xffffffffu : clen, 4); le(lh + 22, zip64 ? 0xffffffffu : usize, 4);
    le(lh + 26, nl, 2); le(lh + 28, zip64 ? 20 : 0, 2);
    le(x, 1, 2); le(x + 2, 16, 2); le(x + 4, usize, 8); le(x + 12, clen, 8);
    grow_put(&z->buf, &z->len, lh, 30);
    grow_put(&z->buf, &z->len, name, nl);
    if (zip64) grow_put(&z->buf, &z->len, x, 20);
    grow_put(&z->buf, &z->len, comp ? comp : data, clen);
    free(comp);
    uint8_t cd[46] = {0}, cx[28] = {0};
    le(cd, 0x02014b50, 4); le(cd + 4, 45, 2); le(cd + 6, zip64 ? 45 : 20, 2); le(cd + 10, method, 2);
    le(cd + 16, crc, 4); le(cd + 20, zip64 ? 0xffffffffu : clen, 4); le(cd + 24, zip64 ? 0xffffffffu : usize, 4);
    le(cd + 28, nl, 2); le(cd + 30, zip64 ? 28 : 0, 2); le(cd + 42, zip64 ? 0xffffffffu : off, 4);
    le(cx, 1, 2); le(cx + 2, 24, 2); le(cx + 4, usize, 8); le(cx + 12, clen, 8); le(cx + 20, off, 8);
    grow_put(&z->cd, &z->cd_len, cd, 46);
    grow_put(&z->cd, &z->cd_len, name, nl);
    if (zip64) grow_put(&z->cd, &z->cd_len, cx, 28);
    z->n++;
}

// Appends the central directory and its end records; returns the zip's bytes (free them).
static uint8_t *zip_finish(ZipOut *z, int zip64, size_t *len) {
    size_t cd_off = z->len;
    grow_put(&z->buf, &z->len, z->cd, z->cd_len);
    if (zip64) {
        uint8_t rec[56] = {0}, loc[20] = {0};
        le(rec, 0x06064b50, 4); le(rec + 4, 44, 8); le(rec + 12, 45, 2); le(rec + 14, 45, 2);
        le(rec + 24, z->n, 8); le(rec + 32, z->n, 8); le(rec + 40, z->cd_len, 8); le(rec + 48, cd_off, 8);
        le(loc, 0x07064b50, 4); le(loc + 8, z->len, 8); le(loc + 16, 1, 4);
        grow_put(&z->buf, &z->len, rec, 56);
        grow_put(&z->buf, &z->len, loc, 20);
    }
    uint8_t e[22] = {0};
    le(e, 0x06054b50, 4);
    le(e + 8, zip64 ? 0xffff : z->n, 2); le(e + 10, zip64 ? 0xffff : z->n, 2);
    le(e + 12, zip64 ? 0xffffffffu : z->cd_len, 4); le(e + 16, zip64 ? 0xffffffffu : cd_off, 4);
    grow_put(&z->buf, &z->len, e, 22);
    free(z->cd);
    *len = z->len;
    return z->buf;
}

static void write_file(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

// An .npy of uint8 rows (N, cols) with the given descr and fortran flag, header padded to 64.
static uint8_t *npy(const uint8_t *rows, size_t N, size_t cols, const char *descr, int fortran, size_t *len) {
    char dict[200];
    int dl = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': %s, 'shape': (%zu, %zu), }", descr,
                      fortran ? "True" : "False", N, cols);
    size_t hlen = (size_t)dl + 1;
    while ((10 + hlen) % 64) hlen++;
    uint8_t *b = malloc(10 + hlen + N * cols);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    le(b + 8, hlen, 2);
    memset(b + 10, ' ', hlen);
    memcpy(b + 10, dict, (size_t)dl);
    b[10 + hlen - 1] = '\n';
    memcpy(b + 10 + hlen, rows, N * cols);
    *len = 10 + hlen + N * cols;
    return b;
}

// An .npz: labels.npy first (so a reader must walk past it), then data.npy. With
// extra > 0, data.npy carries that many images beyond its shape while its zip header
// declares only the shaped size: a zip bomb as a reader sees one.
static uint8_t *npz(const uint8_t *images, size_t N, int method, int zip64, const char *descr, int fortran,
                    size_t extra, size_t *len) {
    ZipOut z = {0};
    uint8_t labels[64] = {0};
    size_t ll, dl;
    uint8_t *lab = npy(labels, 1, 8, "|u1", 0, &ll), *dat = npy(images, N, IMAGE_BYTES, descr, fortran, &dl);
    dat = realloc(dat, dl + extra * IMAGE_BYTES);
    memcpy(dat + dl, images, extra * IMAGE_BYTES);
    zip_add(&z, "labels.npy", lab, ll, 0, zip64, 0);
    zip_add(&z, "data.npy", dat, dl + extra * IMAGE_BYTES, method, zip64, extra ? dl : 0);
    free(lab);
    free(dat);
    return zip_finish(&z, 0, len);
}

static uint8_t *random_images(size_t N, uint64_t seed) {
    uint8_t *im = malloc(N * IMAGE_BYTES);
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < N * IMAGE_BYTES; i++) im[i] = (uint8_t)(i % 7 == 0 ? rng_below(&r, 256) : (i * 31 / 4096) & 0xff);
    return im;
}

// Opens path and reads every image; -1 with err at the first problem.
static int read_everything(const char *path, char *err, size_t cap) {
    ImageSet s;
    uint8_t img[IMAGE_BYTES];
    int rc = imageset_open(&s, path, 4, 1, err, cap);
    for (uint64_t k = 0; !rc && k < s.total; k++) rc = imageset_read(&s, k, img, err, cap);
    if (s.src) imageset_close(&s);
    return rc;
}

void test_imagenet_npz_nested_zip64_and_errors(void) {
    char dir[] = "/tmp/reformer-img-XXXXXX", p[512], err[1024];
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    // an outer ZIP64 archive of two .npz members (deflated and stored), as the published
    // train archives are; its second .npz stores data.npy, its first deflates it
    size_t na = 5, nb = 3, la, lb, lo;
    uint8_t *A = random_images(na, 1), *B = random_images(nb, 2);
    uint8_t *za = npz(A, na, 8, 1, "|u1", 0, 0, &la), *zb = npz(B, nb, 0, 0, "|u1", 0, 0, &lb);
    ZipOut outer = {0};
    zip_add(&outer, "train_data_batch_1.npz", za, la, 8, 1, 0);
    zip_add(&outer, "train_data_batch_2.npz", zb, lb, 0, 1, 0);
    uint8_t *zo = zip_finish(&outer, 1, &lo);
    char train[512];
    snprintf(train, sizeof(train), "%s/Imagenet64_train_npz.zip", dir);
    write_file(train, zo, lo);
    ImageSet s;
    EXPECT(imageset_open(&s, train, 3, 7, err, sizeof(err)) == 0, "open nested: %s", err);
    EXPECT(s.n_src == 2 && s.total == na + nb, "sources %d, images %llu", s.n_src, (unsigned long long)s.total);
    uint8_t img[IMAGE_BYTES];
    int exact = 1;
    for (size_t k = 0; k < na + nb; k++) {  // in order, then one jump back
        EXPECT(imageset_read(&s, k, img, err, sizeof(err)) == 0, "read %zu: %s", k, err);
        exact &= !memcmp(img, k < na ? A + k * IMAGE_BYTES : B + (k - na) * IMAGE_BYTES, IMAGE_BYTES);
    }
    EXPECT(imageset_read(&s, 1, img, err, sizeof(err)) == 0 && !memcmp(img, A + IMAGE_BYTES, IMAGE_BYTES), "jump back");
    EXPECT(exact, "images do not read back exactly");
    // training order: each epoch a permutation of all images; a fresh reader at image k
    // (a resumed run) sees what the running one saw
    int counts[8] = {0}, same = 1;
    uint8_t seen[24][64];
    for (uint64_t k = 0; k < 24; k++) {
        EXPECT(imageset_train_image(&s, k, img, err, sizeof(err)) == 0, "train %llu: %s", (unsigned long long)k, err);
        memcpy(seen[k], img + 100, 64);
        for (size_t j = 0; j < na + nb; j++)
            if (!memcmp(img, j < na ? A + j * IMAGE_BYTES : B + (j - na) * IMAGE_BYTES, IMAGE_BYTES)) counts[j]++;
    }
    for (int j = 0; j < 8; j++) same &= counts[j] == 3;
    EXPECT(same, "three epochs do not show each image three times");
    ImageSet r;
    EXPECT(imageset_open(&r, train, 3, 7, err, sizeof(err)) == 0, "reopen: %s", err);
    int resumed = 1;
    for (uint64_t k = 13; k < 24; k++) {
        imageset_train_image(&r, k, img, err, sizeof(err));
        resumed &= !memcmp(seen[k], img + 100, 64);
    }
    EXPECT(resumed, "a reader started at image 13 disagrees with the running one");
    imageset_close(&r);
    imageset_close(&s);
    // a single .npz and a directory of them
    snprintf(p, sizeof(p), "%s/dir", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/dir/b.npz", dir);
    write_file(p, zb, lb);
    snprintf(p, sizeof(p), "%s/dir/a.npz", dir);
    write_file(p, za, la);
    EXPECT(imageset_open(&s, p, 2, 1, err, sizeof(err)) == 0 && s.total == na, "single npz: %s", err);
    imageset_close(&s);
    snprintf(p, sizeof(p), "%s/dir", dir);
    EXPECT(imageset_open(&s, p, 2, 1, err, sizeof(err)) == 0 && s.total == na + nb, "directory: %s", err);
    EXPECT(imageset_read(&s, na, img, err, sizeof(err)) == 0 && !memcmp(img, B, IMAGE_BYTES), "directory order a, b");
    imageset_close(&s);
    // each corruption: one line naming the file and the problem
    struct { const char *what, *expect; uint8_t *bytes; size_t len; } bad[8];
    int nbad = 0;
    size_t l;
    bad[nbad++] = (typeof(bad[0])){"dtype", "dtype '<f4'", npz(A, 1, 8, 0, "<f4", 0, 0, &l), l};
    bad[nbad++] = (typeof(bad[0])){"fortran", "fortran_order", npz(A, 1, 8, 0, "|u1", 1, 0, &l), l};
    bad[nbad++] = (typeof(bad[0])){"bomb", "zip bomb", npz(A, 1, 8, 0, "|u1", 0, 1, &l), l};
    ZipOut z = {0};
    uint8_t small[40] = {0};
    size_t sl;
    uint8_t *sn = npy(small, 2, 20, "|u1", 0, &sl);  // (2, 20): not an image shape
    sn = realloc(sn, sl);
    zip_add(&z, "data.npy", sn, sl, 8, 0, 0);
    free(sn);
    bad[nbad].bytes = zip_finish(&z, 0, &bad[nbad].len);
    bad[nbad].what = "shape";
    bad[nbad++].expect = "shape";
    z = (ZipOut){0};
    zip_add(&z, "labels.npy", small, 40, 0, 0, 0);
    bad[nbad].bytes = zip_finish(&z, 0, &bad[nbad].len);
    bad[nbad].what = "missing";
    bad[nbad++].expect = "holds neither data.npy";
    uint8_t *crc = malloc(la);
    memcpy(crc, za, la);
    crc[la / 2] ^= 0x40;  // inside data.npy's deflated bytes
    bad[nbad++] = (typeof(bad[0])){"crc", "", crc, la};
    uint8_t *cut = malloc(lo);
    memcpy(cut, zo, lo);
    bad[nbad++] = (typeof(bad[0])){"truncated", "", cut, lo / 2};
    for (int i = 0; i < nbad; i++) {
        snprintf(p, sizeof(p), "%s/bad-%s.npz", dir, bad[i].what);
        write_file(p, bad[i].bytes, bad[i].len);
        err[0] = '\0';
        int rc = read_everything(p, err, sizeof(err));
        int named = strstr(err, p) != NULL && strchr(err, '\n') == NULL;
        if (!strcmp(bad[i].what, "crc"))  // either the inflater or the CRC catches it
            named &= strstr(err, "CRC") || strstr(err, "corrupt") || strstr(err, "inflates");
        else if (!strcmp(bad[i].what, "truncated"))
            named &= strstr(err, "truncated") || strstr(err, "end of central");
        else
            named &= strstr(err, bad[i].expect) != NULL;
        EXPECT(rc == -1 && named, "%s: %s", bad[i].what, err);
        free(bad[i].bytes);
    }
    // enwik8 in a ZIP64 archive reads through the same directory code
    ZipOut z64 = {0};
    zip_add(&z64, "enwik8", A, 3000, 8, 1, 0);
    size_t l64;
    uint8_t *b64 = zip_finish(&z64, 1, &l64), *text = NULL;
    snprintf(p, sizeof(p), "%s/enwik8.zip", dir);
    write_file(p, b64, l64);
    size_t tl = 0;
    int kind;
    EXPECT(archive_read_all(p, "enwik8", 0, 1 << 20, &text, &tl, &kind, err, sizeof(err)) == 0 && tl == 3000 &&
               !memcmp(text, A, 3000), "ZIP64 enwik8: %s", err);
    free(text);
    free(b64);
    free(A); free(B); free(za); free(zb); free(zo);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
}

void test_imagenet_pixel_order_and_bits_per_dim(void) {
    // planar as stored -> RGB interleaved: pixel p's three channels become consecutive
    uint8_t *im = random_images(1, 3), rgb[IMAGE_BYTES];
    int *tok = malloc(IMAGE_BYTES * sizeof(int)), ok = 1;
    image_to_tokens(im, PIXELS_RGB, tok);
    for (int p = 0; p < 4096; p += 97)
        for (int c = 0; c < 3; c++) ok &= tok[p * 3 + c] == im[c * 4096 + p];
    image_from_tokens(tok, PIXELS_RGB, rgb);
    for (int p = 0; p < 4096; p++) ok &= rgb[p * 3 + 1] == im[4096 + p];
    image_to_tokens(im, PIXELS_PLANAR, tok);
    for (int i = 0; i < IMAGE_BYTES; i++) ok &= tok[i] == im[i];
    EXPECT(ok, "pixel orders");
    // a uniform model (zero LM head) scores exactly 8 bits per dim on the validation set
    char dir[] = "/tmp/reformer-img-XXXXXX", p[512], err[1024];
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    size_t l;
    uint8_t *A = random_images(3, 4), *z = npz(A, 3, 8, 0, "|u1", 0, 0, &l);
    snprintf(p, sizeof(p), "%s/val.npz", dir);
    write_file(p, z, l);
    Config cfg;
    config_default(&cfg);
    cfg.model.vocab = 256;
    cfg.model.d_model = 8;
    cfg.model.d_ff = 8;
    cfg.model.n_heads = 1;
    cfg.model.d_head = 4;
    cfg.model.n_layers = 1;
    cfg.model.attn[0] = ATTN_LOCAL;
    cfg.model.local_chunk = 64;
    cfg.model.axial_shape[0] = 64;
    cfg.model.axial_shape[1] = 192;
    cfg.model.axial_dims[0] = 4;
    cfg.model.axial_dims[1] = 4;
    cfg.data.kind = DATA_IMAGENET64;
    cfg.data.seq_len = IMAGE_BYTES;
    strcpy(cfg.data.path, p);
    strcpy(cfg.data.valid_path, p);
    EXPECT(config_validate(&cfg, err, sizeof(err)) == 0, "config: %s", err);
    Dataset d;
    EXPECT(dataset_open(&d, &cfg.data, 256, 1, err, sizeof(err)) == 0, "open: %s", err);
    Model m;
    model_init(&m, &cfg.model, 2, IMAGE_BYTES, 1);
    memset(m.w.p.head.w, 0, (size_t)256 * 16 * 4);
    memset(m.w.p.head.b, 0, 256 * 4);
    EvalResult res;
    EXPECT(evaluate(&m, &cfg, &d, SPLIT_VALID, 0, 0, NULL, &res, NULL, NULL, err, sizeof(err)) == 0, "evaluate: %s", err);
    EXPECT(fabs(res.bits - 8.0) < 1e-5 && res.tokens == 3 * (IMAGE_BYTES - 1), "uniform: %.6f bits over %lld dims",
           res.bits, res.tokens);
    model_free(&m);
    dataset_close(&d);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
    free(A); free(z); free(im); free(tok);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

void test_png_decodes_back(void) {
    int w = 70, h = 33;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 7 + i / 211);
    char path[] = "/tmp/reformer-png-XXXXXX", err[512];
    int fd = mkstemp(path);
    close(fd);
    EXPECT(png_write_rgb(path, rgb, w, h, err, sizeof(err)) == 0, "write: %s", err);
    FILE *f = fopen(path, "rb");
    uint8_t file[1 << 16];
    size_t n = fread(file, 1, sizeof(file), f);
    fclose(f);
    EXPECT(n > 8 && !memcmp(file, "\x89PNG\r\n\x1a\n", 8), "signature");
    // walk the chunks, check each CRC, gather IDAT, inflate it, undo filter 0
    uint8_t *idat = malloc(n);
    size_t il = 0, at = 8;
    int crc_ok = 1, saw_end = 0, pw = 0, ph = 0;
    while (at + 12 <= n && !saw_end) {
        uint32_t len = be32(file + at);
        const uint8_t *type = file + at + 4, *data = file + at + 8;
        crc_ok &= (uint32_t)crc32(crc32(0, type, 4), data, len) == be32(data + len);
        if (!memcmp(type, "IHDR", 4)) { pw = (int)be32(data); ph = (int)be32(data + 4); crc_ok &= data[8] == 8 && data[9] == 2; }
        if (!memcmp(type, "IDAT", 4)) { memcpy(idat + il, data, len); il += len; }
        if (!memcmp(type, "IEND", 4)) saw_end = 1;
        at += 12 + len;
    }
    EXPECT(crc_ok && saw_end && pw == w && ph == h, "chunks: crc %d end %d size %dx%d", crc_ok, saw_end, pw, ph);
    uLongf rl = (uLongf)(w * 3 + 1) * h;
    uint8_t *raw = malloc(rl);
    EXPECT(uncompress(raw, &rl, idat, il) == Z_OK && rl == (uLongf)(w * 3 + 1) * h, "inflate");
    int same = 1;
    for (int y = 0; y < h; y++) same &= raw[(size_t)y * (w * 3 + 1)] == 0 && !memcmp(raw + (size_t)y * (w * 3 + 1) + 1, rgb + (size_t)y * w * 3, (size_t)w * 3);
    EXPECT(same, "pixels differ after decoding");
    // a contact sheet puts image i at its grid cell
    uint8_t tiles[4 * 4 * 4 * 3];
    for (int i = 0; i < (int)sizeof(tiles); i++) tiles[i] = (uint8_t)(i / 48 + 1);
    int sw, sh;
    png_sheet_size(4, 4, 3, 1, &sw, &sh);
    uint8_t *sheet = malloc((size_t)sw * sh * 3);
    png_sheet(tiles, 4, 4, 3, 1, sheet);
    EXPECT(sw == 16 && sh == 11 && sheet[0] == 255 && sheet[((size_t)1 * sw + 1) * 3] == 1 &&
               sheet[((size_t)6 * sw + 1) * 3] == 4, "sheet layout %dx%d", sw, sh);
    unlink(path);
    free(rgb); free(idat); free(raw); free(sheet);
}

// The imagenet64 path from the command line: train from a nested ZIP64 archive, stop and
// resume bit for bit, bits per dim, PNG samples with the decoding cache, and the errors.
void test_cli_imagenet_train_resume_eval_sample(void) {
    char dir[] = "/tmp/reformer-imgcli-XXXXXX", p[600], out[65536];
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    size_t la, lb, lo, lv;
    uint8_t *A = random_images(5, 11), *B = random_images(4, 12);
    uint8_t *za = npz(A, 5, 8, 1, "|u1", 0, 0, &la), *zb = npz(B, 4, 0, 1, "|u1", 0, 0, &lb), *zv = npz(B, 2, 8, 1, "|u1", 0, 0, &lv);
    ZipOut outer = {0};
    zip_add(&outer, "train_data_batch_1.npz", za, la, 8, 1, 0);
    zip_add(&outer, "train_data_batch_2.npz", zb, lb, 0, 1, 0);
    uint8_t *zo = zip_finish(&outer, 1, &lo);
    snprintf(p, sizeof(p), "%s/train.zip", dir);
    write_file(p, zo, lo);
    snprintf(p, sizeof(p), "%s/val.npz", dir);
    write_file(p, zv, lv);
    snprintf(p, sizeof(p), "%s/img.json", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"model\": {\"vocab\": 256, \"d_model\": 16, \"d_ff\": 16, \"n_heads\": 2, \"d_head\": 8,"
               " \"attn_layers\": [\"local\", \"lsh\"], \"n_hashes\": 2, \"n_buckets\": 8, \"lsh_chunk\": 64, \"local_chunk\": 64,"
               " \"axial_shape\": [64, 192], \"axial_dims\": [8, 8]},"
               " \"data\": {\"kind\": \"imagenet64\", \"path\": \"%s/train.zip\", \"valid_path\": \"%s/val.npz\","
               " \"seq_len\": 12288, \"shuffle_images\": 3},"
               " \"train\": {\"batch\": 2, \"steps\": 6, \"lr\": 0.003, \"eval_every\": 3, \"eval_tokens\": 12287,"
               " \"save_every\": 3, \"log_every\": 1, \"seed\": 3, \"threads\": 2}}", dir, dir);
    fclose(f);
    const char *bin = reformer_bin();
    int rc = run_cmd(out, sizeof(out), "%s train %s --out %s/full", bin, p, dir);
    EXPECT(rc == 0, "train: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s train %s --steps 3 --out %s/part && %s train %s --resume %s/part/last.ckpt --out %s/part",
                 bin, p, dir, bin, p, dir, dir);
    EXPECT(rc == 0, "stop and resume: %d %s", rc, out);
    char a[4096], b[4096];
    rc = run_cmd(a, sizeof(a), "grep -o '\"loss\": [^,]*' %s/full/metrics.jsonl", dir);
    run_cmd(b, sizeof(b), "grep -o '\"loss\": [^,]*' %s/part/metrics.jsonl", dir);
    EXPECT(rc == 0 && strlen(a) > 60 && !strcmp(a, b), "the resumed run read other images:\n%s\nvs\n%s", a, b);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/full/last.ckpt", bin, dir);
    EXPECT(rc == 0 && strstr(out, "bits per dim") && strstr(out, "24574 tokens"), "eval: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s eval --ckpt %s/full/last.ckpt --split test", bin, dir);
    EXPECT(rc == 2 && strstr(out, "no test split"), "test split: %d %s", rc, out);
    rc = run_cmd(out, sizeof(out), "%s sample --ckpt %s/full/last.ckpt --samples 2 --seed 4 --out %s/png", bin, dir, dir);
    EXPECT(rc == 0 && strstr(out, "sample-001.png") && strstr(out, "samples.png"), "sample: %d %s", rc, out);
    // each PNG decodes to a 64x64 RGB image (the sheet: 2 tiles and 2-pixel gaps)
    rc = run_cmd(out, sizeof(out), "for f in %s/png/sample-000.png %s/png/samples.png; do od -An -tu1 -j16 -N8 $f; done", dir, dir);
    EXPECT(rc == 0 && strstr(out, "0   0   0  64   0   0   0  64") && strstr(out, "0   0   0 134   0   0   0  68"),
           "PNG sizes: %s", out);
    // a damaged archive stops training with the file named
    snprintf(p, sizeof(p), "%s/bad.json", dir);
    run_cmd(NULL, 0, "head -c %zu %s/train.zip > %s/cut.zip && sed 's#train.zip#cut.zip#' %s/img.json > %s", lo / 2, dir, dir, dir, p);
    rc = run_cmd(out, sizeof(out), "%s train %s --out %s/bad", bin, p, dir);
    EXPECT(rc == 1 && strstr(out, "cut.zip") && strstr(out, "truncated"), "truncated archive: %d %s", rc, out);
    free(A); free(B); free(za); free(zb); free(zv); free(zo);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
}

// Archives numpy itself wrote (tests/data/numpy/make_npz.py, numpy 2.5.2):
// np.savez (stored members with ZIP64 local extras), np.savez_compressed (deflated, data.npy
// between labels.npy and mean.npy) and a deflated zip of both. Image k of a file with seed s
// holds (i * 7 + s) % 251 at flat index i = k * 12288 + j.
void test_imagenet_reads_numpy_archives(void) {
    const char *files[] = {"tests/data/numpy/plain.npz", "tests/data/numpy/compressed.npz", "tests/data/numpy/outer.zip"};
    const int images[] = {2, 3, 5};
    char err[1024];
    uint8_t img[IMAGE_BYTES];
    for (int f = 0; f < 3; f++) {
        ImageSet s;
        if (imageset_open(&s, files[f], 2, 1, err, sizeof(err))) {
            EXPECT(0, "%s", err);
            continue;
        }
        EXPECT(s.total == (uint64_t)images[f], "%s: %llu images", files[f], (unsigned long long)s.total);
        int exact = 1;
        for (uint64_t k = 0; k < s.total; k++) {
            EXPECT(imageset_read(&s, k, img, err, sizeof(err)) == 0, "%s", err);
            int seed = f == 0 || (f == 2 && k < 2) ? 1 : 2;
            uint64_t row = f == 2 && k >= 2 ? k - 2 : k;
            for (int j = 0; j < IMAGE_BYTES; j++) exact &= img[j] == (uint8_t)(((row * IMAGE_BYTES + j) * 7 + seed) % 251);
        }
        EXPECT(exact, "%s: pixels differ from what numpy wrote", files[f]);
        imageset_close(&s);
    }
}

// ---- van den Oord's form: a tar of 64x64 PNG files ----
static void be(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static void png_chunk(uint8_t **b, size_t *len, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t head[8], tail[4];
    be(head, n);
    memcpy(head + 4, type, 4);
    uLong crc = crc32(0, (const uint8_t *)type, 4);
    if (n) crc = crc32(crc, data, n);  // zlib's crc32(c, NULL, 0) means "start", not "add nothing"
    be(tail, (uint32_t)crc);
    grow_put(b, len, head, 8);
    if (n) grow_put(b, len, data, n);
    grow_put(b, len, tail, 4);
}

static int pred(int f, int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : f == 4 ? (pa <= pb && pa <= pc ? a : pb <= pc ? b : c) : 0;
}

// A PNG of rgb (side x side) whose row y uses filter y % 5, its data split over two IDATs;
// color 6 writes RGBA (which the reader refuses).
static uint8_t *png_filtered(const uint8_t *rgb, int side, int color, size_t *len) {
    int ch = color == 6 ? 4 : 3;
    size_t row = (size_t)side * ch;
    uint8_t *raw = malloc((row + 1) * side), *px = malloc(row * side);
    for (int i = 0; i < side * side; i++)
        for (int k = 0; k < ch; k++) px[(size_t)i * ch + k] = k < 3 ? rgb[(size_t)i * 3 + k] : 255;
    for (int y = 0; y < side; y++) {
        int f = y % 5;
        raw[(size_t)y * (row + 1)] = (uint8_t)f;
        for (size_t i = 0; i < row; i++) {
            int a = i >= (size_t)ch ? px[(size_t)y * row + i - ch] : 0, b = y ? px[(size_t)(y - 1) * row + i] : 0;
            int c = y && i >= (size_t)ch ? px[(size_t)(y - 1) * row + i - ch] : 0;
            raw[(size_t)y * (row + 1) + 1 + i] = (uint8_t)(px[(size_t)y * row + i] - pred(f, a, b, c));
        }
    }
    uLongf zl = compressBound((uLong)((row + 1) * side));
    uint8_t *zb = malloc(zl), *b = NULL, ihdr[13] = {0};
    compress2(zb, &zl, raw, (uLong)((row + 1) * side), 9);
    be(ihdr, side);
    be(ihdr + 4, side);
    ihdr[8] = 8;
    ihdr[9] = (uint8_t)color;
    *len = 0;
    grow_put(&b, len, "\x89PNG\r\n\x1a\n", 8);
    png_chunk(&b, len, "IHDR", ihdr, 13);
    png_chunk(&b, len, "tEXt", (const uint8_t *)"k\0v", 3);  // an ancillary chunk to skip
    png_chunk(&b, len, "IDAT", zb, (uint32_t)(zl / 2));
    png_chunk(&b, len, "IDAT", zb + zl / 2, (uint32_t)(zl - zl / 2));
    png_chunk(&b, len, "IEND", NULL, 0);
    free(raw); free(px); free(zb);
    return b;
}

// Appends a tar member (ustar header, data padded to 512); names over 100 bytes go first as
// a GNU 'L' long-name member.
static void tar_add(uint8_t **b, size_t *len, const char *name, const uint8_t *data, size_t n, char type) {
    if (strlen(name) > 99) tar_add(b, len, "././@LongLink", (const uint8_t *)name, strlen(name) + 1, 'L');
    uint8_t h[512] = {0};
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "0000644");
    snprintf((char *)h + 124, 12, "%011lo", (unsigned long)n);
    snprintf((char *)h + 136, 12, "%011lo", 0UL);
    h[156] = (uint8_t)type;
    memcpy(h + 257, "ustar  ", 8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    grow_put(b, len, h, 512);
    if (n) grow_put(b, len, data, n);
    uint8_t pad[512] = {0};
    if (n % 512) grow_put(b, len, pad, 512 - n % 512);
}

void test_imagenet_png_tar(void) {
    char dir[] = "/tmp/reformer-tar-XXXXXX", p[600], err[1024];
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    uint8_t *im = random_images(3, 21), rgb[3][IMAGE_BYTES];
    const int P = IMAGE_SIDE * IMAGE_SIDE;
    for (int k = 0; k < 3; k++)  // the stored planar images as interleaved RGB
        for (int q = 0; q < P; q++)
            for (int c = 0; c < 3; c++) rgb[k][q * 3 + c] = im[(size_t)k * IMAGE_BYTES + c * P + q];
    // image 0 through our writer (filter 0), images 1 and 2 with every filter
    snprintf(p, sizeof(p), "%s/w.png", dir);
    EXPECT(png_write_rgb(p, rgb[0], 64, 64, err, sizeof(err)) == 0, "%s", err);
    FILE *f = fopen(p, "rb");
    uint8_t w0[65536];
    size_t l0 = fread(w0, 1, sizeof(w0), f), l1, l2, lt = 0;
    fclose(f);
    uint8_t *f1 = png_filtered(rgb[1], 64, 2, &l1), *f2 = png_filtered(rgb[2], 64, 2, &l2), *tar = NULL;
    char longname[160];
    snprintf(longname, sizeof(longname), "train_64x64/%0120d.png", 7);
    tar_add(&tar, &lt, "train_64x64/", NULL, 0, '5');
    tar_add(&tar, &lt, "train_64x64/a.png", w0, l0, '0');
    tar_add(&tar, &lt, "train_64x64/README", (const uint8_t *)"hi", 2, '0');
    tar_add(&tar, &lt, longname, f1, l1, '0');
    tar_add(&tar, &lt, "train_64x64/c.PNG", f2, l2, '0');
    uint8_t end[1024] = {0};
    grow_put(&tar, &lt, end, 1024);
    snprintf(p, sizeof(p), "%s/train_64x64.tar", dir);
    write_file(p, tar, lt);
    ImageSet s;
    EXPECT(imageset_open(&s, p, 2, 1, err, sizeof(err)) == 0, "open: %s", err);
    EXPECT(s.total == 3, "%llu PNGs listed, want 3", (unsigned long long)s.total);
    uint8_t img[IMAGE_BYTES];
    for (uint64_t k = 0; k < s.total; k++) {
        EXPECT(imageset_read(&s, k, img, err, sizeof(err)) == 0, "read %llu: %s", (unsigned long long)k, err);
        EXPECT(!memcmp(img, im + k * IMAGE_BYTES, IMAGE_BYTES), "PNG %llu decodes to other pixels", (unsigned long long)k);
    }
    imageset_close(&s);
    // corruptions: a header checksum, a cut tar, a PNG CRC, a wrong size, RGBA
    struct { const char *what, *expect; long at; int cut; } bad[] = {
        {"checksum", "checksum", 512 + 10, 0},
        {"cut", "truncated", 0, 1},
        {"crc", "CRC", 1024 + 40, 0},
    };
    for (int i = 0; i < 3; i++) {
        uint8_t *copy = malloc(lt);
        memcpy(copy, tar, lt);
        if (bad[i].at) copy[bad[i].at] ^= 0x21;
        snprintf(p, sizeof(p), "%s/bad-%s.tar", dir, bad[i].what);
        write_file(p, copy, bad[i].cut ? lt / 2 : lt);
        free(copy);
        err[0] = '\0';
        int rc = read_everything(p, err, sizeof(err));
        EXPECT(rc == -1 && strstr(err, p) && strstr(err, bad[i].expect), "%s: %s", bad[i].what, err);
    }
    uint8_t small[32 * 32 * 3] = {0}, *t2 = NULL;
    size_t ls, la, l2t = 0;
    uint8_t *ps = png_filtered(small, 32, 2, &ls), *pa = png_filtered(rgb[0], 64, 6, &la);
    tar_add(&t2, &l2t, "s.png", ps, ls, '0');
    grow_put(&t2, &l2t, end, 1024);
    snprintf(p, sizeof(p), "%s/small.tar", dir);
    write_file(p, t2, l2t);
    EXPECT(read_everything(p, err, sizeof(err)) == -1 && strstr(err, "32x32 PNG"), "size: %s", err);
    free(t2);
    t2 = NULL;
    l2t = 0;
    tar_add(&t2, &l2t, "a.png", pa, la, '0');
    grow_put(&t2, &l2t, end, 1024);
    snprintf(p, sizeof(p), "%s/rgba.tar", dir);
    write_file(p, t2, l2t);
    EXPECT(read_everything(p, err, sizeof(err)) == -1 && strstr(err, "colour type 6"), "RGBA: %s", err);
    free(t2); free(ps); free(pa); free(f1); free(f2); free(tar); free(im);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
}

// Robustness: random byte flips, truncations and runs of garbage in each archive form must
// end in 0 or one error line, never a crash, a hang or an out-of-bounds read (run under
// `make asan` too). A damaged archive may still read when the damage hits no checked byte
// (a file name, padding); what matters is how the others fail.
void test_readers_survive_random_damage(void) {
    char dir[] = "/tmp/reformer-fuzz-XXXXXX", p[600], err[1024];
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    uint8_t *im = random_images(3, 31), *forms[4] = {0};
    size_t lens[4], la, lb;
    uint8_t *za = npz(im, 2, 8, 1, "|u1", 0, 0, &la), *zb = npz(im, 1, 0, 0, "|u1", 0, 0, &lb);
    ZipOut outer = {0};
    zip_add(&outer, "a.npz", za, la, 8, 1, 0);
    zip_add(&outer, "b.npz", zb, lb, 0, 1, 0);
    forms[0] = zip_finish(&outer, 1, &lens[0]);
    forms[1] = za;
    lens[1] = la;
    size_t lp, lt = 0;
    uint8_t rgb[IMAGE_BYTES], *png, *tar = NULL, end[1024] = {0};
    memcpy(rgb, im, IMAGE_BYTES);
    png = png_filtered(rgb, 64, 2, &lp);
    tar_add(&tar, &lt, "x/0.png", png, lp, '0');
    tar_add(&tar, &lt, "x/1.png", png, lp, '0');
    grow_put(&tar, &lt, end, 1024);
    forms[2] = tar;
    lens[2] = lt;
    ZipOut text = {0};
    zip_add(&text, "enwik8", im, 20000, 8, 0, 0);
    forms[3] = zip_finish(&text, 0, &lens[3]);
    Rng r;
    rng_seed(&r, 99);
    int outcomes[2] = {0, 0};
    for (int form = 0; form < 4; form++) {
        for (int it = 0; it < 150; it++) {
            size_t n = lens[form];
            uint8_t *b = malloc(n);
            memcpy(b, forms[form], n);
            int how = (int)rng_below(&r, 3);
            if (how == 0) {  // flip 1-4 bytes
                for (int k = 1 + (int)rng_below(&r, 4); k > 0; k--) b[rng_below(&r, (uint32_t)n)] ^= (uint8_t)(1 + rng_below(&r, 255));
            } else if (how == 1) {  // cut
                n = rng_below(&r, (uint32_t)n);
            } else {  // a run of garbage
                size_t at = rng_below(&r, (uint32_t)n), run = 1 + rng_below(&r, 64);
                for (size_t k = at; k < at + run && k < n; k++) b[k] = (uint8_t)rng_below(&r, 256);
            }
            snprintf(p, sizeof(p), "%s/f%d.bin", dir, form);
            write_file(p, b, n);
            free(b);
            err[0] = '\0';
            int rc;
            if (form < 3) {
                rc = read_everything(p, err, sizeof(err));
            } else {
                uint8_t *got = NULL;
                size_t len;
                int kind;
                rc = archive_read_all(p, "enwik8", 0, 1 << 20, &got, &len, &kind, err, sizeof(err));
                free(got);
            }
            outcomes[rc == 0]++;
            EXPECT(rc == 0 || (rc == -1 && err[0] && !strchr(err, '\n')), "form %d, damage %d: rc %d, '%s'", form, how, rc, err);
        }
    }
    EXPECT(outcomes[0] > 300, "only %d of 600 damaged archives were refused", outcomes[0]);
    printf("    600 damaged archives: %d refused with one line, %d read (damage in unchecked bytes)\n", outcomes[0], outcomes[1]);
    for (int f = 0; f < 4; f++) free(forms[f]);
    free(zb); free(png); free(im);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
}
