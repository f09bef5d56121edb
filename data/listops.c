// listops.c: ListOps TSV lines into ids and labels, and the value of an expression (for tests
// that check a file against itself).
#include "listops.h"

#include <stdlib.h>
#include <string.h>

#include "../core/common.h"
#include "files.h"

static const char *const TOKENS[LISTOPS_VOCAB] = {"<pad>", "0", "1", "2", "3", "4", "5", "6", "7", "8",
                                                  "9", "[MIN", "[MAX", "[MED", "[SM", "]"};
enum { ID_MIN = 11, ID_MAX = 12, ID_MED = 13, ID_SM = 14, ID_END = 15 };

static int id_of(const char *tok, size_t n) {
    for (int i = 1; i < LISTOPS_VOCAB; i++)
        if (strlen(TOKENS[i]) == n && !memcmp(TOKENS[i], tok, n)) return i;
    return -1;
}

// Line `no` (its source and label, NUL-terminated) appended to s. Returns 0 or -1 with err.
static int add_line(ListopsSet *s, size_t *cap_ids, char *source, const char *label, const char *path, int no,
                    int max_len, char *err, size_t cap) {
    char *end;
    long y = strtol(label, &end, 10);
    if (end == label || *end || y < 0 || y >= LISTOPS_CLASSES)
        return set_error(err, cap, "%s:%d: label '%.20s' is not a class 0-9", path, no, label);
    size_t at = s->start[s->count];
    int n = 0;
    for (char *t = strtok(source, " "); t; t = strtok(NULL, " ")) {
        if (!strcmp(t, "(") || !strcmp(t, ")")) continue;  // LRA's reader drops them
        int id = id_of(t, strlen(t));
        if (id < 0) return set_error(err, cap, "%s:%d: token '%.20s' is not in ListOps' vocabulary", path, no, t);
        if (++n > max_len) return set_error(err, cap, "%s:%d: more than %d tokens", path, no, max_len);
        if (at + n > *cap_ids) {
            *cap_ids = 2 * *cap_ids + 4096;
            s->ids = realloc(s->ids, *cap_ids * sizeof(int));
            CHECK(s->ids, "out of memory");
        }
        s->ids[at + n - 1] = id;
    }
    if (n == 0) return set_error(err, cap, "%s:%d: empty sequence", path, no);
    s->len[s->count] = n;
    s->label[s->count] = (int)y;
    s->count++;
    s->start[s->count] = at + n;
    return 0;
}

int listops_read(ListopsSet *s, const char *path, int max_len, char *err, size_t cap) {
    memset(s, 0, sizeof(*s));
    char *text;
    size_t len;
    if (files_read_all(path, (size_t)1 << 31, &text, &len, err, cap)) return -1;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    s->start = xcalloc(lines + 1, sizeof(size_t));
    s->len = xmalloc(lines * sizeof(int));
    s->label = xmalloc(lines * sizeof(int));
    size_t cap_ids = 0;
    int rc = 0, no = 0;
    for (char *line = text, *next; line && !rc; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[--n] = '\0';
        if (++no == 1) {
            if (strcmp(line, "Source\tTarget"))
                rc = set_error(err, cap, "%s:1: expected the header 'Source<TAB>Target' of LRA's ListOps files", path);
            continue;
        }
        if (n == 0 && !next) break;  // the file's last newline
        char *tab = strchr(line, '\t');
        if (!tab || strchr(tab + 1, '\t')) {
            rc = set_error(err, cap, "%s:%d: expected 'source<TAB>label'", path, no);
            break;
        }
        *tab = '\0';
        rc = add_line(s, &cap_ids, line, tab + 1, path, no, max_len, err, cap);
    }
    if (!rc && s->count == 0) rc = set_error(err, cap, "%s: no expressions", path);
    free(text);
    if (rc) listops_free(s);
    return rc;
}

void listops_free(ListopsSet *s) {
    free(s->ids);
    xfree(s->start);
    xfree(s->len);
    xfree(s->label);
    memset(s, 0, sizeof(*s));
}

// The value of the expression starting at ids[*at], advancing *at past it; -1 when malformed.
static int eval_at(const int *ids, int n, int *at, int depth) {
    if (*at >= n || depth > 10000) return -1;
    int id = ids[(*at)++];
    if (id >= 1 && id <= 10) return id - 1;
    if (id < ID_MIN || id > ID_SM) return -1;
    int count = 0, sum = 0, lo = 9, hi = 0, hist[10] = {0};
    while (*at < n && ids[*at] != ID_END) {
        int v = eval_at(ids, n, at, depth + 1);
        if (v < 0) return -1;
        count++, sum += v, hist[v]++;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (*at >= n || count == 0) return -1;
    (*at)++;  // ]
    if (id == ID_MIN) return lo;
    if (id == ID_MAX) return hi;
    if (id == ID_SM) return sum % 10;
    // the median, the mean of the middle two rounded down for an even count (LRA: int(np.median))
    int below = 0, a = -1, b = -1;
    for (int v = 0; v < 10; v++) {
        if (a < 0 && below + hist[v] > (count - 1) / 2) a = v;
        if (b < 0 && below + hist[v] > count / 2) b = v;
        below += hist[v];
    }
    return (a + b) / 2;
}

int listops_value(const int *ids, int n) {
    int at = 0, v = eval_at(ids, n, &at, 0);
    return at == n ? v : -1;
}
