// args.c: strtoll/strtod with end-pointer and range checks (never atoi).
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    set_error_v(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "reformer: %s\n", msg);
    exit(2);
}

long long arg_int(const char *flag, const char *text, long long lo, long long hi) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0') die("%s: '%s' is not an integer", flag, text);
    if (v < lo || v > hi) die("%s: %lld is out of range [%lld, %lld]", flag, v, lo, hi);
    return v;
}

double arg_float(const char *flag, const char *text, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v)) die("%s: '%s' is not a number", flag, text);
    if (v < lo || v > hi) die("%s: %g is out of range [%g, %g]", flag, v, lo, hi);
    return v;
}

int arg_choice(const char *flag, const char *text, const char *const *choices) {
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        if (strcmp(text, choices[i]) == 0) return i;
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", choices[i]);
    }
    die("%s: '%s' is not one of %s", flag, text, list);
}

const char *arg_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) die("%s needs a value", argv[*i]);
    return argv[++*i];
}

void usage_error(const char *cmd, const char *usage, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    set_error_v(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    // a usage of several forms (one per line in --help) is joined with " | "
    char joined[1024];
    size_t o = 0;
    for (const char *p = usage; *p && o + 4 < sizeof(joined); p++) {
        if (*p != '\n') {
            joined[o++] = *p;
            continue;
        }
        memcpy(joined + o, " | ", 3);
        o += 3;
        while (p[1] == ' ') p++;
    }
    joined[o] = '\0';
    fprintf(stderr, "reformer %s: %s; usage: %s\n", cmd, msg, joined);
    exit(2);
}

int arg_is_help(const char *flag) { return !strcmp(flag, "--help") || !strcmp(flag, "-h"); }

int arg_threads(const char *flag, const char *text, int allow_zero) {
    return (int)arg_int(flag, text, allow_zero ? 0 : 1, 1024);
}

int cores_online(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

void threads_apply(int n) {
    if (n <= 0) n = cores_online() / dist_local_size();
    threads_set(n > 0 ? n : 1);
}
