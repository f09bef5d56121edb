// args.c: flag tables, strtoll/strtod with end-pointer and range checks (never atoi), and
// the one prefix of every message.
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *command = "";

void cmd_set_name(const char *name) { command = name; }

static void say_v(const char *fmt, va_list ap) {
    char msg[2048];
    set_error_v(msg, sizeof(msg), fmt, ap);
    fprintf(stderr, "reformer%s%s: %s\n", command[0] ? " " : "", command, msg);
}

void cmd_say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say_v(fmt, ap);
    va_end(ap);
}

int cmd_fail(int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say_v(fmt, ap);
    va_end(ap);
    return rc;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say_v(fmt, ap);
    va_end(ap);
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

// "--split valid|test" or "--ckpt CKPT" or "--json": a flag as usage and help show it.
static void flag_form(char *out, size_t cap, const Flag *f) {
    int n = snprintf(out, cap, "%s", f->name);
    if (f->kind == FLAG_CHOICE)
        for (int i = 0; f->choices[i] && n < (int)cap; i++) n += snprintf(out + n, cap - n, "%c%s", i ? '|' : ' ', f->choices[i]);
    else if (f->value && n < (int)cap)
        snprintf(out + n, cap - n, " %s", f->value);
}

static void usage_line(const CommandSpec *spec, char *out, size_t cap) {
    int n = snprintf(out, cap, "reformer %s%s%s", spec->name, spec->positional[0] ? " " : "", spec->positional);
    for (const Flag *f = spec->flags; f->name && n < (int)cap; f++) {
        char form[256];
        flag_form(form, sizeof(form), f);
        n += snprintf(out + n, cap - n, f->required ? " %s" : " [%s]", form);
    }
}

static void print_help(const CommandSpec *spec) {
    char usage[4096];
    usage_line(spec, usage, sizeof(usage));
    printf("usage: %s\n\n%s\n\n", usage, spec->about);
    int width = 0;
    for (const Flag *f = spec->flags; f->name; f++) {
        char form[256];
        flag_form(form, sizeof(form), f);
        if ((int)strlen(form) > width) width = (int)strlen(form);
    }
    if (width > 24) width = 24;  // a longer form takes a line of its own
    for (const Flag *f = spec->flags; f->name; f++) {
        char form[256];
        flag_form(form, sizeof(form), f);
        if ((int)strlen(form) > width) printf("  %s\n  %*s  ", form, width, "");
        else printf("  %-*s  ", width, form);
        for (const char *h = f->help; *h; h++) {
            putchar(*h);
            if (*h == '\n') printf("  %*s  ", width, "");
        }
        putchar('\n');
    }
}

void usage_error(const CommandSpec *spec, const char *fmt, ...) {
    char msg[1024], usage[4096];
    va_list ap;
    va_start(ap, fmt);
    set_error_v(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    usage_line(spec, usage, sizeof(usage));
    die("%s; usage: %s", msg, usage);
}

static void flag_store(const Flag *f, void *flags, const char *value) {
    char *field = (char *)flags + f->offset;
    switch (f->kind) {
    case FLAG_SWITCH: *(int *)field = 1; break;
    case FLAG_TEXT: *(const char **)field = value; break;
    case FLAG_INT: *(int *)field = (int)arg_int(f->name, value, (long long)f->lo, (long long)f->hi); break;
    case FLAG_LONG: *(long long *)field = arg_int(f->name, value, (long long)f->lo, (long long)f->hi); break;
    case FLAG_FLOAT: *(float *)field = (float)arg_float(f->name, value, f->lo, f->hi); break;
    case FLAG_CHOICE: *(int *)field = arg_choice(f->name, value, f->choices); break;
    case FLAG_CUSTOM: f->parse(flags, value); break;
    }
}

int flags_parse(const CommandSpec *spec, void *flags, int argc, char **argv, const char **pos, int *n_pos) {
    *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(spec);
            return 1;
        }
        const Flag *f = spec->flags;
        while (f->name && strcmp(a, f->name)) f++;
        if (f->name) {
            int takes = f->kind != FLAG_SWITCH;
            if (takes && i + 1 >= argc) die("%s needs a value", a);
            flag_store(f, flags, takes ? argv[++i] : NULL);
        } else if (a[0] == '-') {
            usage_error(spec, "unknown option '%s'", a);
        } else if (*n_pos < spec->max_positional) {
            pos[(*n_pos)++] = a;
        } else {
            usage_error(spec, "unexpected argument '%s'", a);
        }
    }
    for (const Flag *f = spec->flags; f->name; f++) {
        // a required value is a text (a path): still NULL when it was not given
        if (f->required && !*(const char **)((char *)flags + f->offset)) usage_error(spec, "missing %s", f->name);
    }
    return 0;
}


