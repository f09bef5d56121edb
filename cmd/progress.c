// progress.c: the progress line and metrics.jsonl.
#include "progress.h"

#include "args.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "../data/files.h"

int progress_open(Progress *p, const char *metrics_path, long long total, long long first,
                  long long resume_step, char *err, size_t cap) {
    memset(p, 0, sizeof(*p));
    p->tty = isatty(2);
    p->total = total;
    p->first = first;
    p->t0 = now_seconds();
    if (!metrics_path) return 0;
    if (resume_step >= 0) {  // drop lines written after the checkpoint we resume from
        struct stat sb;
        FILE *in = NULL;
        if (stat(metrics_path, &sb) == 0 && !(in = files_open(metrics_path, NULL, err, cap))) return -1;
        if (in) {
            AtomicFile out;
            if (files_create(&out, metrics_path, err, cap)) {
                fclose(in);
                return -1;
            }
            char line[8192];
            while (fgets(line, sizeof(line), in)) {
                const char *s = strstr(line, "\"step\":");
                if (!s || atoll(s + 7) > resume_step) continue;
                fputs(line, out.f);
                const char *e = strstr(line, "\"elapsed_s\": ");  // elapsed_s continues across the resume
                if (e) p->elapsed_before = atof(e + 13);
            }
            fclose(in);
            if (files_commit(&out, 0, err, cap)) return -1;
        }
    }
    p->metrics = fopen(metrics_path, resume_step >= 0 ? "a" : "w");
    if (!p->metrics) return set_error(err, cap, "%s: cannot open metrics for writing", metrics_path);
    char dir[4096];
    const char *slash = strrchr(metrics_path, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - metrics_path) : 1, slash ? metrics_path : ".");
    return events_open(&p->events, dir, resume_step, err, cap);
}

static void format_eta(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(buf, cap, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

void progress_step(Progress *p, long long step, double loss, double lr, double tokens_per_s,
                   int log_line, double valid_loss, double valid_acc) {
    if (p->quiet) return;
    double elapsed = now_seconds() - p->t0;
    double per = (step - p->first) > 0 ? elapsed / (step - p->first) : NAN;
    char eta[32], line[512];
    format_eta(eta, sizeof(eta), per * (p->total - step));
    int n = snprintf(line, sizeof(line), "step %lld/%lld | loss %.4f | bits %.4f | lr %.2e | %.0f tok/s | ETA %s",
                     step, p->total, loss, loss / log(2.0), lr, tokens_per_s, eta);
    if (valid_loss >= 0)
        n += snprintf(line + n, sizeof(line) - n, " | valid %.4f%s", valid_loss, valid_acc >= 0 ? "" : "");
    if (valid_loss >= 0 && valid_acc >= 0) snprintf(line + n, sizeof(line) - n, " acc %.2f%%", 100 * valid_acc);
    if (p->tty) {
        fprintf(stderr, "\r%-110s", line);
        p->dirty = 1;
        if (valid_loss >= 0) {  // keep validation results on screen
            fprintf(stderr, "\n");
            p->dirty = 0;
        }
    } else if (log_line || valid_loss >= 0) {
        fprintf(stderr, "%s\n", line);
    }
    if (p->metrics && (log_line || valid_loss >= 0)) {
        fprintf(p->metrics, "{\"step\": %lld, \"loss\": %.17g, \"lr\": %.9g, \"tokens_per_s\": %.1f, \"elapsed_s\": %.3f, "
                "\"tokens\": %lld", step, loss, lr, tokens_per_s, p->elapsed_before + elapsed, step * p->tokens_per_step);
        if (valid_loss >= 0) fprintf(p->metrics, ", \"valid_loss\": %.17g", valid_loss);
        if (valid_acc >= 0) fprintf(p->metrics, ", \"valid_accuracy\": %.17g", valid_acc);
        fprintf(p->metrics, "}\n");
        fflush(p->metrics);
        events_scalar(&p->events, "train/loss", step, (float)loss);
        events_scalar(&p->events, "train/bits", step, (float)(loss / log(2.0)));
        events_scalar(&p->events, "train/lr", step, (float)lr);
        events_scalar(&p->events, "train/tokens_per_s", step, (float)tokens_per_s);
        if (valid_loss >= 0) {
            events_scalar(&p->events, "valid/loss", step, (float)valid_loss);
            events_scalar(&p->events, "valid/bits", step, (float)(valid_loss / log(2.0)));
        }
        if (valid_acc >= 0) events_scalar(&p->events, "valid/accuracy", step, (float)valid_acc);
    }
}

void progress_count(Progress *p, const char *label, long long done, long long total, double loss) {
    if (p->quiet) return;
    double now = now_seconds(), elapsed = now - p->t0;
    int last = done >= total;
    if (!last && now - p->last_shown < (p->tty ? 0.5 : 30.0)) return;
    p->last_shown = now;
    char eta[32], line[512];
    double rate = done / (elapsed + 1e-9);
    format_eta(eta, sizeof(eta), last ? elapsed : done > 0 ? (total - done) / rate : NAN);
    int n = snprintf(line, sizeof(line), "%s %lld/%lld tokens", label, done, total);
    if (loss >= 0) n += snprintf(line + n, sizeof(line) - n, " | loss %.4f", loss);
    snprintf(line + n, sizeof(line) - n, " | %.0f tok/s | %s %s", rate, last ? "took" : "ETA", eta);
    if (p->tty) {
        fprintf(stderr, "\r%-100s", line);
        p->dirty = !last;
        if (last) fprintf(stderr, "\n");
    } else {
        fprintf(stderr, "%s\n", line);
    }
}

void progress_note(Progress *p, const char *fmt, ...) {
    if (p->quiet) return;
    if (p->dirty) fprintf(stderr, "\n");
    p->dirty = 0;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cmd_say("%s", msg);
}

void progress_close(Progress *p) {
    if (p->dirty) fprintf(stderr, "\n");
    if (p->metrics) fclose(p->metrics);
    p->metrics = NULL;
    events_close(&p->events);
}
