// imagenet.c: listing, nested streaming and the training order of ImageNet 64x64.
#include "imagenet.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "files.h"
#include "npy.h"
#include "png.h"
#include "tar.h"

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

static void reader_close(ImageSet *s) {
    stream_close(&s->inner);
    stream_close(&s->outer);
    if (s->f) fclose(s->f);
    s->f = NULL;
    s->cur = -1;
}

// Opens source i at its first image: walks the .npz's local headers to data.npy (inside
// the outer member when nested) and checks its header. *images gets its row count.
static int reader_open(ImageSet *s, int i, uint64_t *images, char *err, size_t cap) {
    reader_close(s);
    const ImageSource *src = &s->src[i];
    memset(&s->range, 0, sizeof(s->range));
    memset(&s->outer, 0, sizeof(s->outer));
    memset(&s->inner, 0, sizeof(s->inner));
    long long size;
    s->f = files_open(src->path, &size, err, cap);
    if (!s->f) return -1;
    if (src->kind == SOURCE_PNG_TAR) {  // listed at open; each PNG is read where it lies
        *images = src->images;
        s->cur = i;
        s->next = 0;
        return 0;
    }
    Stream *npz = &s->range;
    if (src->kind == SOURCE_NESTED_NPZ) {
        if (zip_open_entry(&s->range, &s->outer, s->f, size, &src->entry, src->path, err, cap)) return -1;
        npz = &s->outer;
    } else {
        stream_file(&s->range, s->f, 0, size, src->path, err, cap);
    }
    ZipEntry e;
    for (;;) {
        int r = zip_next_local(npz, &e);
        if (r < 0) return -1;
        if (r == 0) return stream_fail(npz, "no data.npy array in the .npz");
        if (!strcmp(e.name, "data.npy")) break;
        if (stream_skip(npz, e.csize)) return -1;  // labels.npy, mean.npy
    }
    if (stream_member(&s->inner, npz, e.method, e.csize, e.usize, e.crc, "data.npy")) return -1;
    NpyHeader h;
    if (npy_read_header(&s->inner, &h)) return -1;
    if (!npy_is_u8(&h)) return stream_fail(&s->inner, "dtype '%s'; images must be uint8 ('|u1')", h.descr);
    if (h.fortran_order) return stream_fail(&s->inner, "fortran_order is True; images must be rows (C order)");
    if (h.ndim != 2 || h.shape[1] != IMAGE_BYTES)
        return stream_fail(&s->inner, "shape has %d dims (%llu, %llu); expected (N, %d) for 64x64 RGB", h.ndim,
                           (unsigned long long)h.shape[0], (unsigned long long)(h.ndim > 1 ? h.shape[1] : 0), IMAGE_BYTES);
    uint64_t left = s->inner.usize - s->inner.done;
    if (h.shape[0] > UINT64_MAX / IMAGE_BYTES || left != h.shape[0] * IMAGE_BYTES)
        return stream_fail(&s->inner, "holds %llu data bytes; shape (%llu, %d) needs %llu", (unsigned long long)left,
                           (unsigned long long)h.shape[0], IMAGE_BYTES, (unsigned long long)(h.shape[0] * IMAGE_BYTES));
    *images = h.shape[0];
    s->cur = i;
    s->next = 0;
    return 0;
}

static int add_source(ImageSet *s, const ImageSource *src) {
    ImageSource *grown = realloc(s->src, (size_t)(s->n_src + 1) * sizeof(ImageSource));
    if (!grown) return -1;
    s->src = grown;
    s->src[s->n_src++] = *src;
    return 0;
}

#define MAX_PNG_BYTES (1 << 20)  // a 64x64 PNG is at most ~13 KB; more is not one

static int add_png(void *ctx, const char *name, uint64_t offset, uint64_t len) {
    ImageSource *src = ctx;
    size_t n = strlen(name);
    if (n < 4 || strcasecmp(name + n - 4, ".png") || len > MAX_PNG_BYTES) return 0;
    if ((src->images & (src->images - 1)) == 0) {  // grow at powers of two
        size_t room = src->images ? 2 * src->images : 1024;
        uint64_t *at = realloc(src->png_at, room * sizeof(uint64_t));
        if (at) src->png_at = at;
        uint32_t *ln = realloc(src->png_len, room * sizeof(uint32_t));
        if (ln) src->png_len = ln;
        if (!at || !ln) return -1;
    }
    src->png_at[src->images] = offset;
    src->png_len[src->images++] = (uint32_t)len;
    return 0;
}

// A tar of PNG files: every member ending in .png, in tar order.
static int add_tar(ImageSet *s, FILE *f, long long size, const char *path, char *err, size_t cap) {
    ImageSource src;
    memset(&src, 0, sizeof(src));
    snprintf(src.path, sizeof(src.path), "%s", path);
    src.kind = SOURCE_PNG_TAR;
    int rc = tar_walk(f, size, path, add_png, &src, err, cap);
    if (rc && !err[0]) rc = set_error(err, cap, "%s: out of memory listing the tar", path);
    if (!rc && src.images == 0) rc = set_error(err, cap, "%s: a tar without .png files", path);
    if (!rc && add_source(s, &src)) rc = set_error(err, cap, "out of memory");
    if (rc) {
        free(src.png_at);
        free(src.png_len);
    }
    return rc;
}

// A zip is either an .npz itself (it holds data.npy) or an archive of .npz members; a tar
// holds PNG files.
static int add_file(ImageSet *s, const char *path, char *err, size_t cap) {
    long long size;
    FILE *f = files_open(path, &size, err, cap);
    if (!f) return -1;
    uint8_t magic[4] = {0};
    uint8_t block[512];
    if (size >= 512 && fread(block, 1, 512, f) == 512 && tar_is_header(block)) {
        err[0] = '\0';
        int rc = add_tar(s, f, size, path, err, cap);
        fclose(f);
        return rc;
    }
    if (fseeko(f, 0, SEEK_SET) || fread(magic, 1, 4, f) != 4 || memcmp(magic, "PK\3\4", 4)) {
        fclose(f);
        return set_error(err, cap, "%s: not a zip, .npz or tar file (bad magic)", path);
    }
    ZipEntry *all;
    int n = zip_directory(f, size, path, &all, err, cap);
    fclose(f);
    if (n < 0) return -1;
    ImageSource src;
    memset(&src, 0, sizeof(src));
    snprintf(src.path, sizeof(src.path), "%s", path);
    int is_npz = 0, added = 0, rc = 0;
    for (int i = 0; i < n; i++) is_npz |= !strcmp(all[i].name, "data.npy");
    if (is_npz) {
        rc = add_source(s, &src);
        added = 1;
    }
    for (int i = 0; i < n && !is_npz && !rc; i++) {
        if (!ends_with(all[i].name, ".npz")) continue;
        src.kind = SOURCE_NESTED_NPZ;
        src.entry = all[i];
        rc = add_source(s, &src);
        added++;
    }
    free(all);
    if (rc) return set_error(err, cap, "out of memory");
    if (!added) return set_error(err, cap, "%s: holds neither data.npy nor .npz members", path);
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int add_directory(ImageSet *s, const char *dir, char *err, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return set_error(err, cap, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, rc = 0;
    for (struct dirent *de; !rc && (de = readdir(d));) {
        if (!ends_with(de->d_name, ".npz") && !ends_with(de->d_name, ".zip") && !ends_with(de->d_name, ".tar")) continue;
        char **grown = realloc(names, (size_t)(n + 1) * sizeof(char *));
        char *name = grown ? strdup(de->d_name) : NULL;
        if (grown) names = grown;
        if (!name) rc = set_error(err, cap, "%s: out of memory listing the directory", dir);
        else names[n++] = name;
    }
    closedir(d);
    if (n > 1) qsort(names, (size_t)n, sizeof(char *), by_name);  // readdir order is arbitrary
    for (int i = 0; i < n; i++) {
        char path[1024];
        if (!rc && snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path))
            rc = set_error(err, cap, "%s/%s: path too long", dir, names[i]);
        if (!rc) rc = add_file(s, path, err, cap);
        free(names[i]);
    }
    free(names);
    if (!rc && n == 0) rc = set_error(err, cap, "%s: no .npz, .zip or .tar files in the directory", dir);
    return rc;
}

int imageset_open(ImageSet *s, const char *path, int shuffle, uint64_t seed, char *err, size_t cap) {
    memset(s, 0, sizeof(*s));
    s->cur = -1;
    s->shuffle = shuffle > 0 ? shuffle : 1;
    s->seed = seed;
    s->block_epoch = UINT64_MAX;
    struct stat sb;
    if (stat(path, &sb)) return set_error(err, cap, "%s: cannot open: %s", path, strerror(errno));
    int rc = S_ISDIR(sb.st_mode) ? add_directory(s, path, err, cap) : add_file(s, path, err, cap);
    for (int i = 0; i < s->n_src && !rc; i++) {  // every header is checked before training starts
        rc = reader_open(s, i, &s->src[i].images, err, cap);
        s->total += s->src[i].images;
    }
    reader_close(s);
    if (!rc && s->total == 0) rc = set_error(err, cap, "%s: holds no images", path);
    if (!rc) {
        s->block = malloc((size_t)s->shuffle * IMAGE_BYTES);
        s->perm = malloc((size_t)s->shuffle * sizeof(uint32_t));
        s->order = malloc((size_t)s->n_src * sizeof(int));
        if (!s->block || !s->perm || !s->order) rc = set_error(err, cap, "out of memory for a %d-image shuffle block", s->shuffle);
    }
    if (rc) imageset_close(s);
    return rc;
}

void imageset_close(ImageSet *s) {
    reader_close(s);
    for (int i = 0; i < s->n_src; i++) {
        free(s->src[i].png_at);
        free(s->src[i].png_len);
    }
    free(s->src);
    free(s->block);
    free(s->perm);
    free(s->order);
    memset(s, 0, sizeof(*s));
    s->cur = -1;
}

// PNG j of tar source i, stored planar like an .npz row.
static int png_read(ImageSet *s, int i, uint64_t j, uint8_t *img, char *err, size_t cap) {
    const ImageSource *src = &s->src[i];
    uint8_t buf[MAX_PNG_BYTES > 65536 ? 65536 : MAX_PNG_BYTES], *png = buf, rgb[IMAGE_BYTES];
    size_t n = src->png_len[j];
    if (n > sizeof(buf) && !(png = malloc(n))) return set_error(err, cap, "%s: out of memory", src->path);
    char name[1100];
    snprintf(name, sizeof(name), "%s: PNG %llu at byte %llu", src->path, (unsigned long long)j,
             (unsigned long long)src->png_at[j]);
    int rc = fseeko(s->f, (off_t)src->png_at[j], SEEK_SET) || fread(png, 1, n, s->f) != n
                 ? set_error(err, cap, "%s: read error", name)
                 : png_decode_rgb(png, n, IMAGE_SIDE, IMAGE_SIDE, rgb, name, err, cap);
    if (png != buf) free(png);
    const int P = IMAGE_SIDE * IMAGE_SIDE;
    for (int p = 0; !rc && p < P; p++)
        for (int c = 0; c < 3; c++) img[c * P + p] = rgb[p * 3 + c];
    return rc;
}

// Image j of source i: continues the open reader when it is there, else reopens and skips.
static int source_read(ImageSet *s, int i, uint64_t j, uint8_t *img, char *err, size_t cap) {
    if (s->cur != i || s->next > j) {
        uint64_t n;
        if (reader_open(s, i, &n, err, cap)) { reader_close(s); return -1; }
    }
    if (s->src[i].kind == SOURCE_PNG_TAR) {
        s->next = j + 1;
        return png_read(s, i, j, img, err, cap);
    }
    if (s->next < j && stream_skip(&s->inner, (j - s->next) * IMAGE_BYTES)) { reader_close(s); return -1; }
    s->next = j;
    if (stream_read(&s->inner, img, IMAGE_BYTES)) { reader_close(s); return -1; }
    s->next++;
    return 0;
}

int imageset_read(ImageSet *s, uint64_t k, uint8_t *img, char *err, size_t cap) {
    int i = 0;
    while (i < s->n_src && k >= s->src[i].images) k -= s->src[i++].images;
    if (i == s->n_src) return set_error(err, cap, "image %llu is past the end", (unsigned long long)k);
    return source_read(s, i, k, img, err, cap);
}

int imageset_train_image(ImageSet *s, uint64_t k, uint8_t *img, char *err, size_t cap) {
    uint64_t epoch = k / s->total, pos = k % s->total, b = pos / (uint64_t)s->shuffle;
    if (epoch != s->block_epoch || b != s->block_index) {
        // this epoch's source order
        Rng rng;
        rng_seed(&rng, hash_stream(s->seed, 0x1a6e, epoch, 0));
        for (int i = 0; i < s->n_src; i++) s->order[i] = i;
        for (int i = s->n_src - 1; i > 0; i--) {
            int j = (int)rng_below(&rng, (uint32_t)i + 1), t = s->order[i];
            s->order[i] = s->order[j];
            s->order[j] = t;
        }
        // the block's images: epoch positions [b * shuffle, ...), read in order
        uint64_t start = b * (uint64_t)s->shuffle, n = s->total - start < (uint64_t)s->shuffle ? s->total - start : (uint64_t)s->shuffle;
        int o = 0;
        uint64_t at = start;
        while (at >= s->src[s->order[o]].images) at -= s->src[s->order[o++]].images;
        s->block_epoch = UINT64_MAX;  // until the block is complete
        for (uint64_t j = 0; j < n; j++) {
            if (source_read(s, s->order[o], at, s->block + j * IMAGE_BYTES, err, cap)) return -1;
            if (++at == s->src[s->order[o]].images) {
                at = 0;
                while (++o < s->n_src && s->src[s->order[o]].images == 0) {}
            }
        }
        rng_seed(&rng, hash_stream(s->seed, 0xb10c, epoch, b));
        for (uint64_t j = 0; j < n; j++) s->perm[j] = (uint32_t)j;
        for (uint64_t j = n - 1; j > 0; j--) {
            uint32_t r = rng_below(&rng, (uint32_t)j + 1), t = s->perm[j];
            s->perm[j] = s->perm[r];
            s->perm[r] = t;
        }
        s->block_epoch = epoch;
        s->block_index = b;
    }
    memcpy(img, s->block + (size_t)s->perm[pos - b * (uint64_t)s->shuffle] * IMAGE_BYTES, IMAGE_BYTES);
    return 0;
}

void image_to_tokens(const uint8_t *img, int order, int *tok) {
    const int P = IMAGE_SIDE * IMAGE_SIDE;
    for (int p = 0; p < P; p++)
        for (int c = 0; c < 3; c++) {
            int t = order == PIXELS_RGB ? p * 3 + c : c * P + p;
            tok[t] = img[c * P + p];
        }
}

void image_from_tokens(const int *tok, int order, uint8_t *rgb) {
    const int P = IMAGE_SIDE * IMAGE_SIDE;
    for (int p = 0; p < P; p++)
        for (int c = 0; c < 3; c++) {
            int t = order == PIXELS_RGB ? p * 3 + c : c * P + p;
            rgb[p * 3 + c] = (uint8_t)(tok[t] < 0 ? 0 : tok[t] > 255 ? 255 : tok[t]);
        }
}
