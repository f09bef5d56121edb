// train.c: `reformer train CONFIG.json`: the training loop, validation, checkpoints,
// resume and clean interruption, in one process or as one rank of an mpirun job.
//
// Data parallel (cmd/dist.h): every rank draws the same global batch and runs its share of
// the sequences; gradients are summed by a reduce-scatter, so rank r holds the sum for its
// slice of the parameters (model_slices), updates that slice with its slice of the optimizer
// state (ZeRO-1; train.shard_optimizer) and all-gathers the new parameters. Rank 0 alone
// prints, writes metrics and writes checkpoints (gathering the optimizer slices).
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>


#include "../core/optim.h"
#include "../core/common.h"
#include "../core/model.h"
#include "../data/dataset.h"
#include "args.h"
#include "batch.h"
#include "machine.h"
#include "checkpoint.h"
#include "commands.h"
#include "dist.h"
#include "evaluate.h"
#include "model_source.h"
#include "plot.h"
#include "progress.h"
#include "../data/files.h"


// With --ckpt the model is the source's; CONFIG.json may still set these model keys.
static const char *const FINE_TUNE_KEYS[] = {"hidden_dropout", "lsh_dropout", "local_dropout", "ffn_chunk",
                                             "head_chunk", NULL};

// Fine-tuning: the model section from --ckpt (an HF directory or our checkpoint), the
// data and train sections from CONFIG.json. Returns 0, or 2 with the message printed.
static int take_model_from(const char *source, const char *config_path, Config *cfg, int *is_hf) {
    char err[1024];
    Config src;
    if (source_read_config(source, &src, is_hf, err, sizeof(err))) {
        cmd_say("%s", err);
        return 1;
    }
    const char *key = config_given_in(cfg, "model", FINE_TUNE_KEYS);
    if (key) {
        cmd_say("%s sets %s, but the model comes from %s (only dropout and chunk sizes "
                        "may be set)", config_path, key, source);
        return 2;
    }
    ReformerConfig own = cfg->model;
    cfg->model = src.model;
    cfg->model.hidden_dropout = own.hidden_dropout;
    cfg->model.lsh_dropout = own.lsh_dropout;
    cfg->model.local_dropout = own.local_dropout;
    cfg->model.ffn_chunk = own.ffn_chunk;
    cfg->model.head_chunk = own.head_chunk;
    if (!config_given(cfg, "train.objective")) cfg->train.objective = src.train.objective;
    if (!config_given(cfg, "data.token_offset")) cfg->data.token_offset = src.data.token_offset;
    else if (cfg->data.token_offset != src.data.token_offset)
        cmd_say("note: data.token_offset %d differs from %s's %d", cfg->data.token_offset,
                source, src.data.token_offset);
    if (config_validate(cfg, err, sizeof(err))) {
        cmd_say("with the model of %s: %s", source, err);
        return 2;
    }
    return 0;
}

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { stop_requested = sig; }

// mkdir -p: the output directory and any missing parents.
static int make_dir(const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path) || !path[0]) return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int bad = mkdir(path, 0755) != 0 && errno != EEXIST;
        *p = '/';
        if (bad) return -1;
    }
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat sb;
        return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? 0 : -1;
    }
    return -1;
}

typedef struct {
    const char *config_path, *out, *resume, *data_path, *init;
    long long steps, seed;
    int threads, precision;
} Flags;

static const Flag FLAGS[] = {
    {"--steps", "N", FLAG_LONG, offsetof(Flags, steps), 1, 1e12, .help = "total optimizer steps (default: train.steps)"},
    {"--out", "DIR", FLAG_TEXT, offsetof(Flags, out), .help = "output directory (default: run)"},
    {"--resume", "CKPT", FLAG_TEXT, offsetof(Flags, resume), .help = "continue from a checkpoint of the same config, bit for bit"},
    {"--ckpt", "SRC", FLAG_TEXT, offsetof(Flags, init),
     .help = "fine-tune: start from the weights (and model config) of our checkpoint\n"
             "or a HuggingFace directory; CONFIG.json gives data and training and\n"
             "may set only dropout and chunk sizes in its model section"},
    {"--data", "PATH", FLAG_TEXT, offsetof(Flags, data_path),
     .help = "data.path: enwik8.zip, a gzip or the raw file; ImageNet .zip/.npz/dir"},
    {"--threads", "N", FLAG_INT, offsetof(Flags, threads), 0, 1024,
     .help = "threads per process (default: train.threads, 0 = this process's share\nof the cores)"},
    {"--seed", "S", FLAG_LONG, offsetof(Flags, seed), 0, 9e15, .help = "seed of initialisation, data and dropout (default: train.seed)"},
    {"--precision", NULL, FLAG_CHOICE, offsetof(Flags, precision), .choices = precision_names,
     .help = "fp32 or bf16 products (default: train.precision)"},
    {NULL},
};

static const CommandSpec SPEC = {
    "train", "CONFIG.json", 1,
    "Trains the model of CONFIG.json on its data and writes DIR/metrics.jsonl,\n"
    "DIR/last.ckpt (every train.save_every steps, at the end, and on Ctrl-C) and\n"
    "DIR/best.ckpt (best validation loss). Under mpirun (a build with make MPI=1) the\n"
    "ranks train one model on shares of each batch (README: Training on several machines).",
    FLAGS,
};

// Returns 1 when --help was asked for (and printed).
static int parse_flags(int argc, char **argv, Flags *f) {
    *f = (Flags){.out = "run", .steps = -1, .seed = -1, .threads = -1, .precision = -1};
    int n_pos;
    if (flags_parse(&SPEC, f, argc, argv, &f->config_path, &n_pos)) return 1;
    if (!f->config_path) usage_error(&SPEC, "missing CONFIG.json");
    if (f->init && f->resume) usage_error(&SPEC, "--resume continues a run; --ckpt starts one from weights: give one");
    return 0;
}

// CONFIG.json with the flags' overrides (and with --ckpt the source's model); with --resume,
// checked against the checkpoint's. Returns 0, or the exit status with the message printed.
static int resolve_config(const Flags *f, Config *cfg, int *init_is_hf) {
    char err[1024];
    config_default(cfg);
    // fine-tuning checks the config once the model of --ckpt is in it (take_model_from)
    if ((f->init ? config_load_keys : config_load)(f->config_path, cfg, err, sizeof(err))) {
        cmd_say("%s", err);
        return 2;
    }
    if (f->data_path) {
        if (strlen(f->data_path) >= sizeof(cfg->data.path)) usage_error(&SPEC, "--data: path too long");
        if (cfg->data.kind == DATA_COPY) usage_error(&SPEC, "--data: the copy task (data.kind) makes its own data");
        strcpy(cfg->data.path, f->data_path);
    }
    *init_is_hf = 0;
    if (f->init) {
        int rc = take_model_from(f->init, f->config_path, cfg, init_is_hf);
        if (rc) return rc;
    }
    if (f->steps > 0) cfg->train.steps = f->steps;
    if (f->seed >= 0) cfg->train.seed = f->seed;
    if (f->threads >= 0) cfg->train.threads = f->threads;
    if (f->precision >= 0) cfg->train.precision = f->precision;
    cfg->opt.total = cfg->train.steps;
    if (f->resume) {
        Config stored;
        if (checkpoint_read_config(f->resume, &stored, err, sizeof(err))) {
            cmd_say("%s", err);
            return 1;
        }
        char key[160];
        const char *diff = config_first_difference(cfg, &stored, "model", key, sizeof(key));
        if (!diff) diff = config_first_difference(cfg, &stored, "data", key, sizeof(key));
        if (diff) {
            cmd_say("%s was trained with a different %s than %s", f->resume, diff,
                    f->config_path);
            return 2;
        }
    }
    return 0;
}

// One training run: what set-up builds and the loop uses; released by finish().
typedef struct {
    Config cfg;
    const Flags *flags;
    Dataset data;
    Model m;
    OptimState opt;
    Progress prog;
    TrainState st;
    Batch batch;                    // this rank's share of the step's sequences
    int lock, B, T;
    double *acc;                    // (n_params) the batch's gradient, summed in double; NULL
                                    // for one sequence in one process (nothing to sum)
    double step_s, comm_s;          // seconds in steps, and in their collectives (ranks > 1)
    int rank, ranks, first, count;  // this rank's share [first, first + count) of each batch
    size_t at[1025];                // the parameter slices of the ranks (model_slices)
    int sharded;                    // the optimizer state is this rank's slice only
    char out[4096], last[4096], best[4096];
} Run;

// The batch's gradient is summed in double (Run.acc) whenever there is more than one
// sequence's to add: over the ranks, or over this rank's sequences.
static int sums_in_double(const Run *r) { return r->ranks > 1 || r->count > 1; }

// A set-up step every rank took: 0 when it went well everywhere; else the failing ranks
// say why (rank 0 alone when it failed too: the others failed the same way) and every rank
// returns the status.
static int all_ok(const Run *r, int rc, const char *err) {
    double failed[2] = {rc != 0, r->rank == 0 && rc != 0};
    dist_sum(failed, 2);
    if (failed[0] == 0) return 0;
    if (rc && (r->rank == 0 || failed[1] == 0)) {
        if (r->ranks > 1) cmd_say("rank %d: %s", r->rank, err);
        else cmd_say("%s", err);
    }
    return rc > 0 ? rc : 1;
}

// A failure of this rank in the loop: one process stops cleanly; a rank ends the job.
static int loop_failed(Run *r, const char *err) {
    if (r->ranks > 1) dist_fail("reformer train", "%s", err);
    progress_note(&r->prog, "%s", err);
    return 1;
}

static int open_data(Run *r) {
    char err[1024] = "";
    const Config *c = &r->cfg;
    int rc = 0;
    if (dataset_open(&r->data, &c->data, c->model.vocab, (uint64_t)c->train.seed, err, sizeof(err))) rc = 1;
    else if (r->data.kind == DATA_ENWIK8 && r->data.count[SPLIT_TRAIN] < (size_t)c->data.seq_len)
        rc = 2, set_error(err, sizeof(err), "%s: the train split has %zu bytes, fewer than data.seq_len %d",
                          c->data.path, r->data.count[SPLIT_TRAIN], c->data.seq_len);
    else if (c->train.eval_every && r->data.kind != DATA_COPY &&
             dataset_eval_windows(&r->data, SPLIT_VALID, c->data.seq_len) == 0)
        rc = 2, set_error(err, sizeof(err), "%s: the validation split holds no sequence of %d tokens; use a longer "
                                            "file, a shorter data.seq_len or train.eval_every 0", c->data.path, c->data.seq_len);
    if ((rc = all_ok(r, rc, err))) return rc;
    if (r->data.proportional && r->rank == 0)
        cmd_say("%s holds %zu bytes, not enwik8's 100,000,000: split 90/5/5%% by proportion "
                        "(%zu / %zu / %zu); bits per character are not comparable with published enwik8 figures",
                c->data.path, r->data.len, r->data.count[0], r->data.count[1], r->data.count[2]);
    return 0;
}

// Rank 0: the output directory, its lock, metrics and the resolved config.
static int open_output(Run *r) {
    char err[1024] = "";
    int rc = 0;
    const char *out = r->flags->out;
    snprintf(r->out, sizeof(r->out), "%s", out);
    snprintf(r->last, sizeof(r->last), "%s/last.ckpt", out);
    snprintf(r->best, sizeof(r->best), "%s/best.ckpt", out);
    if (r->rank != 0) {
        r->prog.quiet = 1;
        return all_ok(r, 0, err);
    }
    char path[4096];
    if (make_dir(out)) rc = set_error(err, sizeof(err), "%s: cannot create the output directory", out);
    if (!rc && (r->lock = files_lock_dir(out, err, sizeof(err))) < 0) rc = 1;
    snprintf(path, sizeof(path), "%s/metrics.jsonl", out);
    if (!rc && progress_open(&r->prog, path, r->cfg.train.steps, r->st.step, r->flags->resume ? r->st.step : -1, err,
                             sizeof(err)))
        rc = 1;
    r->prog.tokens_per_step = (long long)r->B * r->cfg.data.seq_len;
    if (!rc) {  // the whole resolved config goes to a file; the screen gets one line
        char *resolved = config_to_json(&r->cfg);
        snprintf(path, sizeof(path), "%s/config.json", out);
        rc = files_write_text(path, resolved, err, sizeof(err)) ? 1 : 0;
        free(resolved);
    }
    return all_ok(r, rc, err);
}

// Bytes that layers may keep of their activations: train.memory_mb, or for "auto" half of the
// memory available now, shared by this machine's ranks, less what the run needs besides. (A
// resumed "auto" run may so keep another number of layers: the same results up to rounding.)
static double keep_budget(const Config *c, int B, int T, double opt_floats_per_param) {
    if (c->train.memory_mb != CONFIG_MIB_AUTO) return (double)c->train.memory_mb * 1048576.0;
    size_t n_params;
    double needs = machine_run_bytes(&c->model, B, T, 0, opt_floats_per_param, &n_params);
    double budget = machine_available_memory() / 2.0 / dist_local_size() - needs;
    return budget > 0 ? budget : 0.0;
}

// The model, the optimizer state (this rank's slice when sharded), and the starting point:
// a checkpoint to resume, weights to fine-tune from, or a fresh initialisation.
static int build_model(Run *r, int init_is_hf) {
    char err[1024] = "";
    Config *c = &r->cfg;
    const Flags *f = r->flags;
    threads_apply(c->train.threads);
    int rc = gemm_set_precision(c->train.precision, err, sizeof(err));
    if ((rc = all_ok(r, rc ? 2 : 0, err))) return rc;
    // per parameter beyond the model's: the gradient sum in double (2 floats) and Adam's state
    double floats = (sums_in_double(r) ? 2.0 : 0) + optim_floats_per_param(c->opt.optimizer, r->sharded ? r->ranks : 1);
    // a rank without a sequence (more ranks than train.batch) still validates: one sequence
    int kept = plan_keep_within(&c->model, imax(r->count, 1), r->T, keep_budget(c, imax(r->count, 1), r->T, floats));
    rc = machine_check_memory(&c->model, imax(r->count, 1), r->T, kept, floats, err, sizeof(err));
    if ((rc = all_ok(r, rc, err))) return rc;
    model_init(&r->m, &c->model, imax(r->count, 1), r->T, (uint64_t)c->train.seed);
    model_keep_layers(&r->m, kept);
    if (r->ranks > r->m.spec.n_entries) {
        if (r->rank == 0)
            cmd_say("%d processes for %d parameter tensors: at most one each", r->ranks,
                    r->m.spec.n_entries);
        return 2;
    }
    model_slices(&r->m, r->ranks, r->at);
    size_t lo = r->sharded ? r->at[r->rank] : 0, hi = r->sharded ? r->at[r->rank + 1] : r->m.spec.n_params;
    optim_init_model(&r->opt, &c->opt, &r->m, lo, hi);
    rng_seed(&r->st.data_rng, hash_stream((uint64_t)c->train.seed, 0xda7a, 0, 0));
    r->st.best_valid = 1e300;
    if ((f->resume && checkpoint_load(f->resume, &r->m, &r->opt, &r->st, err, sizeof(err))) ||
        (f->init && source_load(f->init, init_is_hf, &r->m, NULL, err, sizeof(err))))
        rc = 1;
    if ((rc = all_ok(r, rc, err))) return rc;
    if (f->resume && r->st.ranks != r->ranks && r->rank == 0)
        cmd_say("note: %s was saved by %d processes, resumed by %d: the same data, but "
                        "gradients summed in another order (close to, not bit-identical with, an unbroken run)",
                f->resume, r->st.ranks, r->ranks);
    r->st.ranks = r->ranks;
    dataset_train_seek(&r->data, (uint64_t)r->st.step * r->B);  // images: continue where the run stopped
    return 0;
}

static void print_summary(const Run *r) {
    if (r->rank != 0) return;
    const Config *c = &r->cfg;
    char layers[256] = "", lr[32], procs[64] = "";
    for (int l = 0; l < c->model.n_layers && strlen(layers) < sizeof(layers) - 8; l++)
        snprintf(layers + strlen(layers), sizeof(layers) - strlen(layers), "%s%s", l ? "," : "",
                 attention_names[c->model.attn[l]]);
    config_float_text(c->opt.lr, lr, sizeof(lr));
    if (r->ranks > 1)
        snprintf(procs, sizeof(procs), ", %d processes x %d threads%s", r->ranks, threads_get(),
                 r->sharded ? ", optimizer state sharded" : "");
    if (r->ranks > r->B)
        cmd_say("note: %d processes for train.batch %d: %d of them compute nothing (they keep "
                        "their slices of the optimizer state)", r->ranks, r->B, r->ranks - r->B);
    cmd_say("%s, %zu parameters (%d layers %s, d_model %d), batch %d x %d tokens, %lld steps of "
                    "%s lr %s%s; config in %s/config.json", r->flags->resume ? "resuming" : r->flags->init ? "fine-tuning" : "from scratch",
            r->m.spec.n_params, c->model.n_layers, layers, c->model.d_model, r->B, r->T, c->train.steps,
            c->opt.optimizer == OPT_ADAM ? "adam" : "adafactor", lr, procs, r->out);
    if (c->train.memory_mb != 0) {
        double layer_mb = plan_keep_layer_bytes(&c->model, r->m.spec.B, r->T) / 1048576.0;
        char budget[64];
        if (c->train.memory_mb == CONFIG_MIB_AUTO) snprintf(budget, sizeof(budget), "auto");
        else snprintf(budget, sizeof(budget), "%lld", c->train.memory_mb);
        if (r->m.act.n_kept)
            cmd_say("the top %d of %d layers keep their activations (%.0f MiB%s, "
                            "train.memory_mb %s): their backward skips the recompute", r->m.act.n_kept, c->model.n_layers,
                    r->m.act.n_kept * layer_mb, r->ranks > 1 ? " per process" : "", budget);
        else
            cmd_say("note: train.memory_mb %s leaves less than one layer's activations "
                            "(%.0f MiB): every layer recomputes", budget, layer_mb);
    }
}

// The optimizer step on acc, this rank's share of the batch's gradient: summed over the
// ranks (a reduce-scatter in double: each rank gets its slice's sum, so the sum hardly
// depends on the number of ranks), rounded to float, clipped by the global norm (each
// slice's square summed in rank order: the same bits whether the state is sharded or not),
// applied to this rank's slice (sharded) or to all, and the new parameters all-gathered.
// One process is the case of one rank.
static void apply_update(Run *r) {
    Model *m = &r->m;
    const size_t *at = r->at;
    int me = r->rank, N = r->ranks;
    double t0 = now_seconds();
    if (r->acc) {
        dist_reduce_scatter(r->acc, at);
        #pragma omp parallel for schedule(static)
        for (size_t i = at[me]; i < at[me + 1]; i++) m->w.grads[i] = (float)r->acc[i];
    }
    r->comm_s += now_seconds() - t0;
    double sq[1024] = {0}, sumsq = 0.0;
    t0 = now_seconds();
    if (r->sharded) {
        sq[me] = grad_sumsq(m->w.grads + at[me], at[me + 1] - at[me]);
        dist_sum(sq, N);
    } else {
        dist_allgather(m->w.grads, at);
        for (int k = 0; k < N; k++) sq[k] = grad_sumsq(m->w.grads + at[k], at[k + 1] - at[k]);
    }
    r->comm_s += now_seconds() - t0;
    for (int k = 0; k < N; k++) sumsq += sq[k];
    if (r->sharded) {
        optim_step(&r->cfg.opt, &r->opt, m->w.params + at[me], m->w.grads + at[me], at[me + 1] - at[me], sqrt(sumsq));
        t0 = now_seconds();
        dist_allgather(m->w.params, at);
        r->comm_s += now_seconds() - t0;
    } else {
        optim_step(&r->cfg.opt, &r->opt, m->w.params, m->w.grads, m->spec.n_params, sqrt(sumsq));
    }
}

// One step; *loss is the global batch's mean. Returns 0, 1 on a failure of this rank, 2
// when the loss is not finite (every rank sees it).
static int train_step(Run *r, double *loss) {
    char err[1024];
    double t0 = now_seconds();
    Batch *bt = &r->batch;
    const Config *c = &r->cfg;
    if (dataset_train_batch(&r->data, bt->tok, batch_meta(bt, 0, c), r->B, r->first, r->count, bt->data_T, &r->st.data_rng,
                            err, sizeof(err))) {
        size_t n = strlen(err);
        snprintf(err + n, sizeof(err) - n, " (last.ckpt keeps the last saved step)");
        return loop_failed(r, err);
    }
    batch_fit(bt, r->count, c);
    if (c->model.head == HEAD_LM && c->train.objective == OBJECTIVE_MASKED)
        for (int b = 0; b < r->count; b++) batch_mask_row(bt, b, c, batch_train_mask_stream(c, r->st.step, r->first + b));
    Model *m = &r->m;
    // the step's dropout masks and LSH rotations, drawn per sequence of the global batch
    ForwardArgs a = {.step = r->st.step, .training = 1, .first_seq = r->first};
    batch_args(bt, c, &a);
    double local = r->count ? model_forward(m, bt->tok, r->count, bt->T, &a) : 0.0;
    double sums[2] = {r->count ? local * m->act.n_labels : 0.0, r->count ? (double)m->act.n_labels : 0.0};
    dist_sum(sums, 2);
    *loss = r->ranks == 1 ? local : sums[1] > 0 ? sums[0] / sums[1] : 0.0;
    if (!isfinite(*loss)) return 2;
    if (r->acc) memset(r->acc, 0, m->spec.n_params * sizeof(double));
    else model_zero_grad(m);
    if (r->count) model_backward(m, (long long)sums[1], r->acc);
    apply_update(r);
    r->st.step++;
    r->step_s += now_seconds() - t0;
    return 0;
}

// Validation after a step; a better loss saves best.ckpt. Returns 0 or 1.
static int validate(Run *r, double *vloss, double *vacc) {
    char err[1024];
    EvalResult e;
    // with the rotations of the step just taken
    if (evaluate(&r->m, &r->cfg, &r->data, SPLIT_VALID, r->cfg.train.eval_tokens, r->st.step - 1, NULL, &e, NULL,
                 NULL, err, sizeof(err)))
        return loop_failed(r, err);
    *vloss = e.loss_nats;
    *vacc = e.accuracy;
    if (*vloss < r->st.best_valid) {
        r->st.best_valid = *vloss;
        if (checkpoint_save(r->best, &r->cfg, &r->m, &r->opt, &r->st, err, sizeof(err))) {
            progress_note(&r->prog, "%s", err);
            return 1;
        }
    }
    return 0;
}

// The curves so far, DIR/curves.svg (reformer plot draws several runs); rank 0.
static void plot_curves(Run *r) {
    if (r->rank != 0) return;
    char svg[4200], perr[512];
    const char *self[1] = {r->out};
    snprintf(svg, sizeof(svg), "%s/curves.svg", r->out);
    if (plot_runs(self, 1, PLOT_STEP, svg, perr, sizeof(perr)))  // a picture is not worth stopping for
        progress_note(&r->prog, "note: %s", perr);
}

// One line on what the run used: the peak memory of the largest process and, with ranks,
// the share of step time spent in collectives (the slowest rank's).
static void report_resources(Run *r) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    double v[2048] = {0};
    int N = r->ranks;
    v[r->rank] = u.ru_maxrss / 1024.0;
    v[N + r->rank] = r->step_s > 0 ? r->comm_s / r->step_s : 0;
    dist_sum(v, 2 * N);
    double rss = 0, comm = 0;
    for (int k = 0; k < N; k++) {
        rss = fmax(rss, v[k]);
        comm = fmax(comm, v[N + k]);
    }
    if (N == 1) progress_note(&r->prog, "peak memory %.0f MB", rss);
    else progress_note(&r->prog, "peak memory %.0f MB per process (the largest of %d); collectives took "
                                 "%.1f%% of the step time", rss, N, 100 * comm);
}

// The real tokens of the step just taken (padding left out): this rank's share scaled to the batch.
static long long step_tokens(const Run *r) {
    long long real = 0;
    for (int b = 0; b < r->count; b++) real += r->batch.valid[b];
    return r->count ? real * r->B / r->count : (long long)r->B * r->cfg.data.seq_len;
}

static int train_loop(Run *r) {
    const TrainConfig *tc = &r->cfg.train;
    char err[1024];
    int rc = 0;
    double t_log = now_seconds();
    long long tokens_since = 0;
    // every rank stops at the same step: a signal to any of them (mpirun forwards Ctrl-C) stops all
    while (r->st.step < tc->steps && !dist_any(stop_requested)) {
        double loss;
        int bad = train_step(r, &loss);
        if (bad == 2) {  // a diverged run must not overwrite the last good checkpoint
            progress_note(&r->prog, "step %lld: the loss is %g; stopped without saving (%s keeps step "
                                    "%lld's state): lower train.lr or set train.clip", r->st.step + 1, loss, r->last, r->st.step);
            return 1;
        }
        if (bad) return 1;
        long long step = r->st.step;
        tokens_since += step_tokens(r);
        double now = now_seconds(), tps = tokens_since / (now - t_log + 1e-9);
        int log_line = step % tc->log_every == 0 || step == tc->steps;
        double vloss = -1, vacc = -1;
        if (tc->eval_every && (step % tc->eval_every == 0 || step == tc->steps) && validate(r, &vloss, &vacc)) return 1;
        progress_step(&r->prog, step, loss, optim_lr(&r->cfg.opt, r->opt.t), tps, log_line, vloss, vacc);
        if (vloss >= 0) plot_curves(r);
        if (log_line) {
            t_log = now_seconds();
            tokens_since = 0;
        }
        if (tc->save_every && step % tc->save_every == 0 && step < tc->steps &&
            checkpoint_save(r->last, &r->cfg, &r->m, &r->opt, &r->st, err, sizeof(err))) {
            progress_note(&r->prog, "%s", err);
            return 1;
        }
    }
    if (checkpoint_save(r->last, &r->cfg, &r->m, &r->opt, &r->st, err, sizeof(err))) {
        progress_note(&r->prog, "%s", err);
        rc = 1;
    } else if (stop_requested || r->st.step < tc->steps) {
        progress_note(&r->prog, "interrupted at step %lld; saved %s (resume with --resume %s)",
                      r->st.step, r->last, r->last);
    } else {
        progress_note(&r->prog, "done, %lld steps; saved %s", r->st.step, r->last);
    }
    report_resources(r);
    return rc;
}

static void finish(Run *r) {
    if (r->lock >= 0) close(r->lock);
    progress_close(&r->prog);
    batch_free(&r->batch);
    xfree(r->acc);
    dataset_close(&r->data);
    optim_free(&r->opt);
    model_free(&r->m);
}

int cmd_train(int argc, char **argv) {
    Flags f;
    if (parse_flags(argc, argv, &f)) return 0;
    static Run run;  // large (paths, slices): not on the stack
    Run *r = &run;
    memset(r, 0, sizeof(*r));
    r->flags = &f;
    r->lock = -1;
    r->rank = dist_rank();
    r->ranks = dist_size();
    int init_is_hf, rc = resolve_config(&f, &r->cfg, &init_is_hf);
    if (rc) return rc;
    if (r->ranks > 1024) {
        cmd_say("%d processes; at most 1024", r->ranks);
        return 2;
    }
    r->B = r->cfg.train.batch;
    r->T = config_model_length(&r->cfg);  // data.seq_len, padded to the chunks when they do not divide it
    r->first = r->B / r->ranks * r->rank + imin(r->rank, r->B % r->ranks);
    r->count = r->B / r->ranks + (r->rank < r->B % r->ranks);
    r->sharded = r->ranks > 1 && r->cfg.train.shard_optimizer;
    if (!(rc = open_data(r)) && !(rc = build_model(r, init_is_hf)) && !(rc = open_output(r))) {
        print_summary(r);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        batch_init(&r->batch, imax(r->count, 1), &r->cfg);
        if (sums_in_double(r)) r->acc = xmalloc(r->m.spec.n_params * sizeof(double));
        rc = train_loop(r);
    }
    finish(r);
    return rc;
}
