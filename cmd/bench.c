// bench.c: `reformer bench`: timed training or forward steps on synthetic tokens.
// Each row runs in its own child process, so its peak RSS (getrusage) is its own;
// a first child measures this machine's sgemm rate so MFU is a ratio of one run.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "../core/optim.h"
#include "../core/common.h"
#include "../core/decode.h"
#include "../core/gemm.h"
#include "../core/model.h"
#include "../core/profile.h"
#include "../core/rng.h"
#include "args.h"
#include "machine.h"
#include "commands.h"
#include "model_source.h"


static const char *const MODE_NAMES[] = {"train", "forward", "decode", NULL};
enum { MODE_TRAIN = 0, MODE_FORWARD = 1, MODE_DECODE = 2 };

typedef struct {
    ReformerConfig cfg;
    int have_config, layers, attn, hashes;
    int seqs[16], n_seqs;
    int mode, train, optimizer, steps, warmup, batch, threads, json, precision;
    long long memory_mb;  // train mode: what layers may keep to skip their recompute
    const char *config_path;
} BenchArgs;

static const CommandSpec SPEC;

// --seq L[,L...]: every comma-separated piece is a length: "", "4096," and "1,,2" are errors.
static void parse_seqs(void *flags, const char *value) {
    BenchArgs *a = flags;
    char buf[256];
    if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf)) usage_error(&SPEC, "--seq: too long");
    a->n_seqs = 0;
    for (char *tok = buf, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next) *next++ = '\0';
        if (a->n_seqs == 16) usage_error(&SPEC, "--seq: at most 16 lengths");
        a->seqs[a->n_seqs++] = (int)arg_int("--seq", tok, 2, 1 << 24);
    }
}

static const Flag FLAGS[] = {
    {"--seq", "L[,L...]", FLAG_CUSTOM, 0, .parse = parse_seqs, .help = "sequence lengths, one row each (default 4096)"},
    {"--layers", "N", FLAG_INT, offsetof(BenchArgs, layers), 1, MAX_LAYERS, .help = "override the layer count"},
    {"--attn", NULL, FLAG_CHOICE, offsetof(BenchArgs, attn), .choices = attention_names,
     .help = "lsh, local or full for every layer"},
    {"--mode", NULL, FLAG_CHOICE, offsetof(BenchArgs, mode), .choices = MODE_NAMES,
     .help = "train (default), forward, or decode: L tokens one at a time\nthrough the sampling cache (step_s: seconds per token)"},
    {"--optimizer", NULL, FLAG_CHOICE, offsetof(BenchArgs, optimizer), .choices = optimizer_names,
     .help = "adam (default) or adafactor, for train mode"},
    {"--steps", "N", FLAG_INT, offsetof(BenchArgs, steps), 1, 64, .help = "timed steps, median reported (default 3)"},
    {"--warmup", "N", FLAG_INT, offsetof(BenchArgs, warmup), 0, 64, .help = "untimed steps first (default 1)"},
    {"--batch", "B", FLAG_INT, offsetof(BenchArgs, batch), 1, 4096, .help = "sequences per step (default 1)"},
    {"--hashes", "N", FLAG_INT, offsetof(BenchArgs, hashes), 1, MAX_HASHES, .help = "LSH rounds (default from the model)"},
    {"--threads", "N", FLAG_INT, offsetof(BenchArgs, threads), 1, 1024, .help = "OpenMP threads (default: all cores)"},
    {"--memory-mb", "N", FLAG_LONG, offsetof(BenchArgs, memory_mb), 0, 1LL << 30,
     .help = "train mode: MiB the top layers may keep of their activations\n"
             "to skip their backward's recompute (train.memory_mb; default 0)"},
    {"--precision", NULL, FLAG_CHOICE, offsetof(BenchArgs, precision), .choices = precision_names,
     .help = "products of the dense layers: fp32 (default) or bf16; the reference rate (sgemm)\nis then the 2048^3 product in bf16"},
    {"--json", NULL, FLAG_SWITCH, offsetof(BenchArgs, json), .help = "one JSON object per row"},
    {NULL},
};

static const CommandSpec SPEC = {
    "bench", "[CONFIG.json]", 1,
    "Times training (forward, backward, Adam) or forward steps on random tokens and\n"
    "prints one row per sequence length. Default model: B6 of BENCH.md (6 LSH layers,\n"
    "d_model 256, d_ff 1024, 4 heads x 64, 2 hashes, chunk 64, causal); CONFIG.json: a\n"
    "model config instead of B6.",
    FLAGS,
};

static double peak_rss_mb(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024.0;
}

// The reference rate, GFLOP/s of a 2048^3 product in the precision the row runs: fp32,
// OpenBLAS sgemm with the same threading the model uses (one BLAS thread per OpenMP thread,
// rows split between them); bf16, gemm_team (oneDNN) on operands rounded to bf16 before the
// clock starts, as the layers hold theirs: rounding both 2048^2 operands in every call cost the
// 16-thread AMX reference a third of its rate, so that the model's products ran faster than
// their peak (MFU 0.84, a negative share lost in them).
static double sgemm_rate(int threads) {
    threads_set(threads);
    int n = 2048, bf16 = gemm_precision() == PRECISION_BF16;
    float *a = xmalloc((size_t)n * n * 4), *b = xmalloc((size_t)n * n * 4), *c = xmalloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = 1e-3f * (i % 97);
    uint16_t *a16 = NULL, *b16 = NULL;
    if (bf16) {
        a16 = xmalloc((size_t)n * n * sizeof(uint16_t));
        b16 = xmalloc((size_t)n * n * sizeof(uint16_t));
        gemm_round_bf16(a16, a, n, n, n, 1);
        gemm_round_bf16(b16, b, n, n, n, 1);
    }
    double best = 0;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now_seconds();
        if (bf16) {
            gemm_team(&(GemmOp){0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, .A16 = a16, .B16 = b16}, 1);
        } else {
            #pragma omp parallel
            {
                int nt = omp_get_num_threads(), t = omp_get_thread_num();
                int r0 = n * t / nt, r1 = n * (t + 1) / nt;
                gemm_one(&(GemmOp){0, 0, r1 - r0, n, n, 1.0f, a + (size_t)r0 * n, n,
                                   b, n, 0.0f, c + (size_t)r0 * n, n});
            }
        }
        double dt = now_seconds() - t0;
        if (rep > 0 && 2.0 * n * n * n / dt / 1e9 > best) best = 2.0 * n * n * n / dt / 1e9;
    }
    xfree(a);
    xfree(b);
    xfree(c);
    xfree(a16);
    xfree(b16);
    return best;
}

// B6 of BENCH.md with the axial tables of length L (plan_axial_shape: for a power of two the
// shape scripts/hf_reformer_bench.py gives HuggingFace's model).
static void b6_for(ReformerConfig *c, int L) {
    plan_axial_shape(c->axial_shape, L);
    plan_axial_dims(c->axial_dims, c->d_model);
}

// main re-executes with a better kernel when OpenBLAS chose a generic one; if it still runs
// one (OPENBLAS_CORETYPE set by hand, or exec failed), say so rather than report it quietly.
static void warn_slow_blas(void) {
    const char *better = blas_better_core();
    if (better)
        cmd_say("OpenBLAS runs its '%s' kernel on a CPU that can run '%s'; "
                        "OPENBLAS_CORETYPE=%s is much faster", openblas_get_corename(), better, better);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Layers that keep their activations within --memory-mb (training only).
static int kept_layers(const BenchArgs *a, const ReformerConfig *cfg, int L) {
    return a->train ? plan_keep_within(cfg, a->batch, L, (double)a->memory_mb * 1048576.0) : 0;
}

// The model of one row: B6 (or the config) with the flags' overrides, checked.
static int row_config(const BenchArgs *a, int L, ReformerConfig *cfg, char *err, size_t cap) {
    *cfg = a->cfg;
    if (!a->have_config) b6_for(cfg, L);
    if (a->layers) cfg->n_layers = a->layers;
    if (a->attn >= 0)
        for (int l = 0; l < cfg->n_layers; l++) cfg->attn[l] = a->attn;
    if (a->hashes) cfg->n_hashes = a->hashes;
    if (cfg->axial_shape[0] * cfg->axial_shape[1] < L)
        return set_error(err, cap, "--seq %d exceeds the config's axial shape %dx%d", L, cfg->axial_shape[0],
                         cfg->axial_shape[1]);
    if (config_validate_model(cfg, L, err, cap)) return -1;
    return machine_check_memory(cfg, a->batch, L, kept_layers(a, cfg, L), a->train ? optim_floats_per_param(a->optimizer, 1) : 0,
                                err, cap);
}

// Seconds per token of decoding L tokens: one, then L - 1 greedy tokens through the cache.
static double time_decode(Model *m, const int *tok, int L) {
    Decoder d;
    decoder_init(&d, m, L, NULL);
    float *logits = xmalloc((size_t)m->spec.cfg.vocab * sizeof(float));
    double t0 = now_seconds();
    decoder_prefill(&d, tok, 1, logits);
    for (int t = 1; t < L; t++) {
        int best = 0;
        for (int v = 1; v < m->spec.cfg.vocab; v++) best = logits[v] > logits[best] ? v : best;
        if (isatty(2) && t % 256 == 0) fprintf(stderr, "\rbench L=%d decode %d/%d ", L, t, L);
        decoder_step(&d, best, logits);
    }
    double per_token = (now_seconds() - t0) / (L - 1);
    xfree(logits);
    decoder_free(&d);
    return per_token;
}

// Times warmup + steps training (or forward) steps into times (steps); returns the last loss.
static double time_steps(const BenchArgs *a, Model *m, const OptimConfig *oc, OptimState *os, const int *tok,
                         int L, double *times) {
    double loss = 0;
    for (int s = 0; s < a->warmup + a->steps; s++) {
        if (isatty(2)) fprintf(stderr, "\rbench L=%d step %d/%d ", L, s + 1, a->warmup + a->steps);
        double t0 = now_seconds();
        ForwardArgs fa = {.step = s, .training = a->train};
        if (a->train) model_zero_grad(m);
        loss = model_forward(m, tok, a->batch, L, &fa);
        if (a->train) {
            model_backward(m, m->act.n_labels, NULL);
            optim_update(oc, os, m->w.params, m->w.grads, m->spec.n_params);
        }
        if (s >= a->warmup) times[s - a->warmup] = now_seconds() - t0;
        else profile_reset();
    }
    return loss;
}

// Where the step falls short of the sgemm rate: for each part of the step, its seconds less
// the seconds its FLOPs would take at the same run's sgemm rate, as a share of the timed steps'
// wall time. The parts sum to one less the MFU of the timed steps' mean (the row's MFU takes
// their median): dense_gemm (the dense layers' sgemm calls), layernorm (every LayerNorm),
// activation (the feed-forward's GELU and its gradient), dense_rest (the rest of the dense
// phases: bias, residual and dropout passes, copies, the loss's softmax), attn_kernel (chunked
// attention's score and value products with their masks and softmax), attn_hash (LSH
// rotations, argmax, sort), attn_moves (rows between position and sorted order, round
// weights) and other (embedding, optimizer). Only sgemm, the attention kernels and hashing
// have FLOPs counted; a part below zero ran faster than the 2048^3 reference.
static void lost_shares(char *out, size_t cap, const double *share, const double *part, double tokens,
                        double timed, double gemm_gflops) {
    double rate = gemm_gflops * 1e9 * timed / tokens;  // FLOPs a token the reference runs in `timed`
    double dense = share[PROFILE_ATTN_DENSE] + share[PROFILE_FFN] + share[PROFILE_HEAD];
    double gemm = profile_gemm_seconds / timed, kernel = profile_kernel_seconds / timed;
    double hash = profile_hash_seconds / timed, norm = profile_norm_seconds / timed;
    double act = profile_act_seconds / timed;
    snprintf(out, cap,
             "\"dense_gemm\": %.3f, \"layernorm\": %.3f, \"activation\": %.3f, \"dense_rest\": %.3f, "
             "\"attn_kernel\": %.3f, \"attn_hash\": %.3f, \"attn_moves\": %.3f, \"other\": %.3f",
             gemm - part[FLOPS_DENSE] / rate, norm, act, dense - gemm - norm - act,
             kernel - part[FLOPS_ATTN_KERNEL] / rate,
             hash - part[FLOPS_HASH] / rate, share[PROFILE_ATTN_CORE] - kernel - hash, share[PROFILE_OTHER]);
}

// What one row measured, as its line reports it.
typedef struct {
    int L, layers, attn, kept_layers;  // attn: the kind every layer has, or -1 for a mix
    size_t params;
    double step, tokens_per_s, state_mb, activation_mb, flops_per_token, gemm, loss;
    double gemm_share, gemm_gflops;    // the dense sgemm calls: share of the step, their rate
    char phases[256], lost[512];       // JSON members: time_share and lost
} Row;

static void format_row(char *line, size_t cap, const BenchArgs *a, const Row *r) {
    const char *attn = r->attn < 0 ? "mixed" : attention_names[r->attn];
    double gflops = r->flops_per_token * r->tokens_per_s / 1e9;
    if (a->json)
        snprintf(line, cap,
                 "{\"seq\": %d, \"attn\": \"%s\", \"layers\": %d, \"threads\": %d, \"mode\": \"%s\", "
                 "\"batch\": %d, \"step_s\": %.4f, \"tokens_per_s\": %.1f, \"peak_rss_mb\": %.1f, "
                 "\"state_mb\": %.1f, \"activation_mb\": %.1f, \"flops_per_token\": %.0f, "
                 "\"gflops\": %.2f, \"sgemm_gflops\": %.2f, \"mfu\": %.4f, \"loss\": %.4f, \"params\": %zu, "
                 "\"blas_core\": \"%s\", \"time_share\": {%s}, \"dense_gemm_share\": %.3f, "
                 "\"dense_gemm_gflops\": %.2f, \"kept_layers\": %d, \"precision\": \"%s\", \"backend\": \"%s\", "
                 "\"block_backend\": \"%s\", \"lost\": {%s}}\n",
                 r->L, attn, r->layers, a->threads, MODE_NAMES[a->mode], a->batch, r->step, r->tokens_per_s,
                 peak_rss_mb(), r->state_mb, r->activation_mb, r->flops_per_token, gflops, r->gemm, gflops / r->gemm,
                 r->loss, r->params, openblas_get_corename(), r->phases, r->gemm_share, r->gemm_gflops,
                 r->kept_layers, precision_names[a->precision], gemm_backend(a->precision),
                 gemm_block_backend(a->precision), r->lost);
    else
        snprintf(line, cap, "%7d %-5s %6d %7d %-7s %9.3f %10.1f %9.1f %8.1f %10.2fM %8.2f %8.2f %6.1f%%\n", r->L, attn,
                 r->layers, a->threads, MODE_NAMES[a->mode], r->step, r->tokens_per_s, peak_rss_mb(), r->state_mb,
                 r->flops_per_token / 1e6, gflops, r->gemm, 100.0 * gflops / r->gemm);
}

// The profile's shares of the timed steps' wall time into r: per phase ("other" is the
// remainder) and where the step falls short of the sgemm rate.
static void profile_shares(Row *r, const BenchArgs *a, const double *part, double timed, int timed_steps) {
    double share[PROFILE_PHASES], known = 0;
    for (int p = 0; p < PROFILE_OTHER; p++) known += share[p] = profile_seconds[p] / timed;
    share[PROFILE_OTHER] = 1.0 - known;
    int used = 0;
    for (int p = 0; p < PROFILE_PHASES; p++)
        used += snprintf(r->phases + used, sizeof(r->phases) - used, "%s\"%s\": %.3f", p ? ", " : "", profile_names[p],
                         share[p]);
    lost_shares(r->lost, sizeof(r->lost), share, part, (double)a->batch * r->L * timed_steps, timed, r->gemm);
    r->gemm_share = profile_gemm_seconds / timed;
    r->gemm_gflops = profile_gemm_seconds > 0 ? profile_gemm_flops / profile_gemm_seconds / 1e9 : 0.0;
}

// One row, run in a child: writes its line to fd. Returns the child's exit status.
static int run_row(const BenchArgs *a, int L, double gemm, int fd) {
    threads_set(a->threads);
    ReformerConfig cfg;
    char err[1024];
    if (row_config(a, L, &cfg, err, sizeof(err))) return cmd_fail(2, "%s", err);
    Model m;
    model_init(&m, &cfg, a->batch, L, 1);
    model_keep_layers(&m, kept_layers(a, &cfg, L));
    OptimConfig oc;
    optim_config_default(&oc);
    oc.optimizer = a->optimizer;
    OptimState os = {0};
    if (a->train) optim_init_model(&os, &oc, &m, 0, m.spec.n_params);
    int *tok = xmalloc((size_t)a->batch * L * sizeof(int));
    Rng rng;
    rng_seed(&rng, 7);
    for (size_t i = 0; i < (size_t)a->batch * L; i++) tok[i] = (int)rng_below(&rng, cfg.vocab);
    Row r = {.L = L, .layers = cfg.n_layers, .attn = cfg.attn[0], .kept_layers = m.act.n_kept, .params = m.spec.n_params,
             .gemm = gemm};
    double times[64], timed = 0, part[FLOPS_PARTS];
    int timed_steps = a->mode == MODE_DECODE ? 1 : a->steps;
    if (a->mode == MODE_DECODE) times[0] = time_decode(&m, tok, L);
    else r.loss = time_steps(a, &m, &oc, &os, tok, L, times);
    if (isatty(2)) fprintf(stderr, "\r%40s\r", "");
    for (int s = 0; s < timed_steps; s++) timed += times[s];
    qsort(times, timed_steps, sizeof(double), cmp_double);
    r.step = times[timed_steps / 2];
    // decode: step_s is seconds per token, and flops/tok counts the dense layers and the head
    // (a one-position forward), not the attention window
    r.tokens_per_s = a->mode == MODE_DECODE ? 1.0 / r.step : (double)a->batch * L / r.step;
    r.flops_per_token = a->mode == MODE_DECODE ? plan_flops_split(&m.spec.cfg, 1, 0, 0, part)
                                               : plan_flops_split(&m.spec.cfg, L, a->train, m.act.n_kept, part);
    profile_shares(&r, a, part, timed, timed_steps);
    r.state_mb = (m.spec.n_params * 2.0 + (a->train ? optim_state_floats(&os) : 0)) * 4 / 1048576.0;
    r.activation_mb = model_activation_bytes(&m) / 1048576.0;
    for (int l = 1; l < cfg.n_layers; l++)
        if (cfg.attn[l] != r.attn) r.attn = -1;
    char line[2048];
    format_row(line, sizeof(line), a, &r);
    xfree(tok);
    optim_free(&os);
    model_free(&m);
    return write(fd, line, strlen(line)) < 0;
}

// Runs fn in a child and returns what it wrote to the pipe.
static int in_child(const BenchArgs *a, int L, double gemm, char *out, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (L == 0) {
            char line[64];
            snprintf(line, sizeof(line), "%.3f", sgemm_rate(a->threads));
            _exit(write(fds[1], line, strlen(line)) < 0);
        }
        fflush(stdout);
        _exit(run_row(a, L, gemm, fds[1]));
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fds[0], out + got, cap - 1 - got)) > 0) got += r;
    out[got] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int cmd_bench(int argc, char **argv) {
    BenchArgs a;
    memset(&a, 0, sizeof(a));
    reformer_config_default(&a.cfg);
    a.attn = -1;
    a.train = 1;
    a.steps = 3;
    a.warmup = 1;
    a.batch = 1;
    a.threads = cores_online();
    int n_pos;
    if (flags_parse(&SPEC, &a, argc, argv, &a.config_path, &n_pos)) return 0;
    a.train = a.mode == MODE_TRAIN;
    char err[512];
    if (gemm_set_precision(a.precision, err, sizeof(err))) return cmd_fail(2, "%s", err);
    if (a.config_path) {
        if (config_load_model(a.config_path, &a.cfg, err, sizeof(err)) != 0) return cmd_fail(2, "%s", err);
        a.have_config = 1;
    }
    if (a.mode == MODE_DECODE && (!a.cfg.causal || a.cfg.head != HEAD_LM))
        return cmd_fail(2, "--mode decode: %s is not a causal LM; decoding times sampling", a.config_path);
    if (a.n_seqs == 0) a.seqs[a.n_seqs++] = 4096;
    for (int i = 0; i < a.n_seqs; i++) {
        int L = a.seqs[i], bad = plan_length_misfit(&a.cfg, L);
        if (bad) usage_error(&SPEC, "--seq %d is longer than the chunk length %d and not a multiple of it", L, bad);
    }
    warn_slow_blas();
    char buf[1024];
    if (in_child(&a, 0, 0, buf, sizeof(buf)) != 0) {
        cmd_say("sgemm measurement failed");
        return 1;
    }
    double gemm = atof(buf);
    if (!a.json)
        printf("%7s %-5s %6s %7s %-7s %9s %10s %9s %8s %11s %8s %8s %7s\n", "seq", "attn", "layers",
               "threads", "mode", "step_s", "tokens/s", "rss_MB", "state_MB", "flops/tok", "GFLOP/s",
               "sgemm", "MFU");
    int failed = 0;
    for (int i = 0; i < a.n_seqs; i++) {
        int rc = in_child(&a, a.seqs[i], gemm, buf, sizeof(buf));
        if (rc != 0) {
            cmd_say("row seq=%d failed (exit %d)", a.seqs[i], rc);
            failed = 1;
            continue;
        }
        fputs(buf, stdout);
        fflush(stdout);
    }
    return failed;
}
