// plot.c: `reformer plot RUN... [--x step|tokens|time] [--out FILE.svg]`: the curves of one
// or more runs from their metrics.jsonl as an SVG file: training loss on the left, the
// validation metric on the right (validation accuracy where the run has one: the copy
// task's copied half, a masked LM's masked tokens, a classifier's classes; else loss), one
// colour per run. `train` draws its own run into DIR/curves.svg at every validation.
#include "plot.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/common.h"
#include "../data/files.h"
#include "args.h"
#include "commands.h"

#define MAX_RUNS 8
#define MAX_POINTS 200000

typedef struct {
    char name[256];
    double *x[2], *y[2];  // [0] training loss, [1] validation metric
    int n[2];
} Curve;

static const char *const X_NAMES[] = {"step", "tokens", "time", NULL};  // PLOT_STEP, PLOT_TOKENS, PLOT_TIME
static const char *const X_KEYS[] = {"step", "tokens", "elapsed_s"};
static const char *const COLOURS[MAX_RUNS] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                              "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static int add_point(Curve *c, int k, double x, double y) {
    if (c->n[k] == MAX_POINTS || !isfinite(x) || !isfinite(y)) return 0;
    if ((c->n[k] & (c->n[k] - 1)) == 0) {  // grow at powers of two
        size_t room = c->n[k] ? 2 * (size_t)c->n[k] : 64;
        double *gx = realloc(c->x[k], room * sizeof(double)), *gy = gx ? realloc(c->y[k], room * sizeof(double)) : NULL;
        if (gx) c->x[k] = gx;
        if (gy) c->y[k] = gy;
        if (!gx || !gy) return -1;
    }
    c->x[k][c->n[k]] = x;
    c->y[k][c->n[k]++] = y;
    return 0;
}

// One run: DIR/metrics.jsonl, or the file itself, labelled LABEL in the legend when given as
// LABEL=PATH (a LABEL holds no '/'), else by the path. *accuracy is set when it has a validation
// accuracy (the copy task, a masked LM, a classifier: plotted instead of the validation loss).
static int read_run(Curve *c, const char *run, int x_axis, int *accuracy, char *err, size_t cap) {
    const char *eq = strchr(run, '='), *slash = strchr(run, '/');
    int labelled = eq && eq > run && (!slash || slash > eq);
    snprintf(c->name, sizeof(c->name), "%.*s", labelled ? (int)(eq - run) : (int)strlen(run), run);
    if (labelled) run = eq + 1;
    char path[4096];
    size_t n = strlen(run);
    snprintf(path, sizeof(path), n > 6 && !strcmp(run + n - 6, ".jsonl") ? "%s" : "%s/metrics.jsonl", run);
    char *text;
    if (files_read_all(path, 1u << 30, &text, NULL, err, cap)) return -1;
    int rc = 0, line_no = 0;
    for (char *line = strtok(text, "\n"); line && !rc; line = strtok(NULL, "\n")) {
        line_no++;
        cJSON *o = cJSON_Parse(line);
        const cJSON *x = cJSON_GetObjectItem(o, X_KEYS[x_axis]), *loss = cJSON_GetObjectItem(o, "loss");
        const cJSON *vl = cJSON_GetObjectItem(o, "valid_loss"), *va = cJSON_GetObjectItem(o, "valid_accuracy");
        if (!cJSON_IsNumber(x) || !cJSON_IsNumber(loss))
            rc = set_error(err, cap, "%s: line %d has no \"%s\" and \"loss\" (a metrics.jsonl of reformer train?)", path,
                           line_no, X_KEYS[x_axis]);
        if (!rc && cJSON_IsNumber(va)) *accuracy = 1;
        if (!rc && (add_point(c, 0, x->valuedouble, loss->valuedouble) ||
                    ((cJSON_IsNumber(va) || cJSON_IsNumber(vl)) &&
                     add_point(c, 1, x->valuedouble, cJSON_IsNumber(va) ? 100 * va->valuedouble : vl->valuedouble))))
            rc = set_error(err, cap, "%s: out of memory", path);
        cJSON_Delete(o);
    }
    free(text);
    if (!rc && c->n[0] == 0) rc = set_error(err, cap, "%s: no training steps logged", path);
    return rc;
}

// A "nice" tick step (1, 2 or 5 x 10^k) giving about 5 ticks over [lo, hi].
static double tick_step(double lo, double hi) {
    double raw = (hi - lo) / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void tick_label(char *buf, size_t cap, double v) {
    double a = fabs(v);
    if (a >= 1e9) snprintf(buf, cap, "%gG", v / 1e9);
    else if (a >= 1e6) snprintf(buf, cap, "%gM", v / 1e6);
    else if (a >= 1e4) snprintf(buf, cap, "%gk", v / 1e3);
    else snprintf(buf, cap, "%g", v);
}

// One panel at (x0, y0) of w x h: axes, ticks, title and every run's polyline k.
static void panel(FILE *f, const Curve *c, int runs, int k, double x0, double y0, double w, double h, const char *title,
                  const char *xlabel) {
    double xl = INFINITY, xh = -INFINITY, yl = INFINITY, yh = -INFINITY;
    for (int r = 0; r < runs; r++)
        for (int i = 0; i < c[r].n[k]; i++) {
            xl = fmin(xl, c[r].x[k][i]), xh = fmax(xh, c[r].x[k][i]);
            yl = fmin(yl, c[r].y[k][i]), yh = fmax(yh, c[r].y[k][i]);
        }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n", x0 + w / 2, y0 - 10, title);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", x0, y0, w, h);
    if (!isfinite(xl)) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">no data yet</text>\n", x0 + w / 2, y0 + h / 2);
        return;
    }
    if (xh <= xl) xh = xl + 1;
    if (yh <= yl) yh = yl + 1e-3 * fmax(1, fabs(yl)), yl -= 1e-3 * fmax(1, fabs(yl));
    double pad = (yh - yl) * 0.05;
    yl -= pad, yh += pad;
    char label[32];
    double sx = tick_step(xl, xh), sy = tick_step(yl, yh);
    for (double t = ceil(xl / sx) * sx; t <= xh + 1e-9 * sx; t += sx) {
        double px = x0 + (t - xl) / (xh - xl) * w;
        tick_label(label, sizeof(label), t);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
                px, y0, px, y0 + h, px, y0 + h + 14, label);
    }
    for (double t = ceil(yl / sy) * sy; t <= yh + 1e-9 * sy; t += sy) {
        double py = y0 + h - (t - yl) / (yh - yl) * h;
        tick_label(label, sizeof(label), fabs(t) < 1e-12 * sy ? 0 : t);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
                x0, py, x0 + w, py, x0 - 4, py + 4, label);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n", x0 + w / 2, y0 + h + 32, xlabel);
    for (int r = 0; r < runs; r++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", COLOURS[r]);
        // long runs: at most about 2000 points per line, evenly thinned
        int every = c[r].n[k] > 2000 ? c[r].n[k] / 2000 : 1;
        for (int i = 0; i < c[r].n[k]; i += every)
            fprintf(f, "%.1f,%.1f ", x0 + (c[r].x[k][i] - xl) / (xh - xl) * w, y0 + h - (c[r].y[k][i] - yl) / (yh - yl) * h);
        fprintf(f, "\"/>\n");
    }
}

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if ((unsigned char)*s >= 0x20) fputc(*s, f);
    }
}

int plot_runs(const char *const *runs, int n, int x_axis, const char *out, char *err, size_t cap) {
    if (n < 1 || n > MAX_RUNS) return set_error(err, cap, "plot: 1 to %d runs, not %d", MAX_RUNS, n);
    Curve c[MAX_RUNS];
    memset(c, 0, sizeof(c));
    int rc = 0, accuracy = 0;
    for (int r = 0; r < n && !rc; r++) rc = read_run(&c[r], runs[r], x_axis, &accuracy, err, cap);
    AtomicFile a;
    if (!rc) rc = files_create(&a, out, err, cap);
    FILE *f = rc ? NULL : a.f;
    if (!rc) {
        const double W = 960, H = 440 + 18 * n;
        const char *xlabel = x_axis == PLOT_TOKENS ? "tokens" : x_axis == PLOT_TIME ? "seconds" : "step";
        fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\">\n"
                   "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
        panel(f, c, n, 0, 70, 40, 380, 300, "training loss (nats per token)", xlabel);
        panel(f, c, n, 1, 560, 40, 380, 300, accuracy ? "validation accuracy (%)" : "validation loss (nats per token)",
              xlabel);
        for (int r = 0; r < n; r++) {
            double y = 400 + 18 * r;
            fprintf(f, "<line x1=\"70\" y1=\"%.0f\" x2=\"100\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"3\"/>"
                       "<text x=\"108\" y=\"%.0f\" font-size=\"12\">", y, y, COLOURS[r], y + 4);
            xml_text(f, c[r].name);
            fprintf(f, "</text>\n");
        }
        fprintf(f, "</svg>\n");
        rc = files_commit(&a, 0, err, cap);
    }
    for (int r = 0; r < n; r++)
        for (int k = 0; k < 2; k++) {
            free(c[r].x[k]);
            free(c[r].y[k]);
        }
    return rc;
}

typedef struct {
    const char *out;
    int x_axis;
} Flags;

static const Flag FLAGS[] = {
    {"--x", NULL, FLAG_CHOICE, offsetof(Flags, x_axis), .choices = X_NAMES,
     .help = "step (default), tokens or time (seconds of training)"},
    {"--out", "FILE", FLAG_TEXT, offsetof(Flags, out), .help = "the SVG to write (default curves.svg)"},
    {NULL},
};

static const CommandSpec SPEC = {
    "plot", "RUN|LABEL=RUN [...]", MAX_RUNS + 1,  // one more, to say how many are allowed
    "Draws the curves of training runs (their DIR/metrics.jsonl, or .jsonl files) into one SVG:\n"
    "training loss on the left, validation on the right (its accuracy where a run has one:\n"
    "the copy task, a masked LM, a classifier; else loss), one colour per run, up to 8 runs.\n"
    "RUN is a path, labelled by itself in the legend, or LABEL=PATH.",
    FLAGS,
};

int cmd_plot(int argc, char **argv) {
    Flags f = {"curves.svg", PLOT_STEP};
    const char *runs[MAX_RUNS + 1];
    int n;
    if (flags_parse(&SPEC, &f, argc, argv, runs, &n)) return 0;
    if (n == 0) usage_error(&SPEC, "give at least one run directory");
    if (n > MAX_RUNS) usage_error(&SPEC, "at most %d runs", MAX_RUNS);
    const char *out = f.out;
    int x_axis = f.x_axis;
    char err[1024] = "";
    if (plot_runs(runs, n, x_axis, out, err, sizeof(err))) {
        cmd_say("%s", err);
        return 1;
    }
    printf("%s\n", out);
    return 0;
}
