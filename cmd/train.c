// train.c: `reformer train CONFIG.json`: the training loop, validation, checkpoints,
// resume and clean interruption.
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#include "../core/adam.h"
#include "../core/common.h"
#include "../core/model.h"
#include "../data/dataset.h"
#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "evaluate.h"
#include "model_source.h"
#include "plot.h"
#include "progress.h"
#include "../data/files.h"

static const char *USAGE =
    "reformer train CONFIG.json [--steps N] [--out DIR] [--resume CKPT | --ckpt CKPT|HF_DIR] [--data PATH] "
    "[--threads N] [--seed S]";

// With --ckpt the model is the source's; CONFIG.json may still set these model keys.
static const char *const FINE_TUNE_KEYS[] = {"hidden_dropout", "lsh_dropout", "local_dropout", "ffn_chunk",
                                             "head_chunk", NULL};

// Fine-tuning: the model section from --ckpt (an HF directory or our checkpoint), the
// data and train sections from CONFIG.json. Returns 0, or 2 with the message printed.
static int take_model_from(const char *source, const char *config_path, Config *cfg, int *is_hf) {
    char err[1024];
    Config src;
    if (source_read_config(source, &src, is_hf, err, sizeof(err))) {
        fprintf(stderr, "reformer train: %s\n", err);
        return 1;
    }
    const char *key = config_given_in(cfg, "model", FINE_TUNE_KEYS);
    if (key) {
        fprintf(stderr, "reformer train: %s sets %s, but the model comes from %s (only dropout and chunk sizes "
                        "may be set)\n", config_path, key, source);
        return 2;
    }
    ReformerConfig own = cfg->model;
    cfg->model = src.model;
    cfg->model.hidden_dropout = own.hidden_dropout;
    cfg->model.lsh_dropout = own.lsh_dropout;
    cfg->model.local_dropout = own.local_dropout;
    cfg->model.ffn_chunk = own.ffn_chunk;
    cfg->model.head_chunk = own.head_chunk;
    if (!config_given(cfg, "data.token_offset")) cfg->data.token_offset = src.data.token_offset;
    else if (cfg->data.token_offset != src.data.token_offset)
        fprintf(stderr, "reformer train: note: data.token_offset %d differs from %s's %d\n", cfg->data.token_offset,
                source, src.data.token_offset);
    if (config_validate(cfg, err, sizeof(err))) {
        fprintf(stderr, "reformer train: with the model of %s: %s\n", source, err);
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

int cmd_train(int argc, char **argv) {
    const char *config_path = NULL, *out = "run", *resume = NULL, *data_path = NULL, *init = NULL;
    long long steps = -1, seed = -1;
    int threads = -1;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("usage: %s\n\n"
                   "Trains the model of CONFIG.json on its data and writes DIR/metrics.jsonl,\n"
                   "DIR/last.ckpt (every train.save_every steps, at the end, and on Ctrl-C) and\n"
                   "DIR/best.ckpt (best validation loss).\n\n"
                   "  --steps N      total optimizer steps (default: train.steps)\n"
                   "  --out DIR      output directory (default: run)\n"
                   "  --resume CKPT  continue from a checkpoint of the same config, bit for bit\n"
                   "  --ckpt SRC     fine-tune: start from the weights (and model config) of our checkpoint\n"
                   "                 or a HuggingFace directory; CONFIG.json gives data and training and\n"
                   "                 may set only dropout and chunk sizes in its model section\n"
                   "  --data PATH    data.path: enwik8.zip, a gzip or the raw file; ImageNet .zip/.npz/dir\n"
                   "  --threads N    threads (default: train.threads, 0 = all cores)\n"
                   "  --seed S       seed of initialisation, data and dropout (default: train.seed)\n", USAGE);
            return 0;
        } else if (!strcmp(f, "--steps")) steps = arg_int(f, arg_value(argc, argv, &i), 1, 1000000000000LL);
        else if (!strcmp(f, "--out")) out = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--resume")) resume = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--ckpt")) init = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--data")) data_path = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--threads")) threads = (int)arg_int(f, arg_value(argc, argv, &i), 0, 1024);
        else if (!strcmp(f, "--seed")) seed = arg_int(f, arg_value(argc, argv, &i), 0, 9000000000000000LL);
        else if (f[0] == '-') usage_error("train", USAGE, "unknown option '%s'", f);
        else if (!config_path) config_path = f;
        else usage_error("train", USAGE, "unexpected argument '%s'", f);
    }
    if (!config_path) usage_error("train", USAGE, "missing CONFIG.json");
    if (init && resume) usage_error("train", USAGE, "--resume continues a run; --ckpt starts one from weights: give one");
    char err[1024];
    Config cfg;
    config_default(&cfg);
    if (config_load(config_path, &cfg, err, sizeof(err))) {
        fprintf(stderr, "reformer train: %s\n", err);
        return 2;
    }
    if (data_path) {
        if (strlen(data_path) >= sizeof(cfg.data.path)) usage_error("train", USAGE, "--data: path too long");
        if (cfg.data.kind == DATA_COPY) usage_error("train", USAGE, "--data: the copy task (data.kind) makes its own data");
        strcpy(cfg.data.path, data_path);
    }
    int init_is_hf = 0;
    if (init) {
        int rc = take_model_from(init, config_path, &cfg, &init_is_hf);
        if (rc) return rc;
    }
    if (steps > 0) cfg.train.steps = steps;
    if (seed >= 0) cfg.train.seed = seed;
    if (threads >= 0) cfg.train.threads = threads;
    cfg.opt.total = cfg.train.steps;
    Config stored;
    if (resume) {
        if (checkpoint_read_config(resume, &stored, err, sizeof(err))) {
            fprintf(stderr, "reformer train: %s\n", err);
            return 1;
        }
        char key[160];
        const char *diff = config_first_difference(&cfg, &stored, "model", key, sizeof(key));
        if (!diff) diff = config_first_difference(&cfg, &stored, "data", key, sizeof(key));
        if (diff) {
            fprintf(stderr, "reformer train: %s was trained with a different %s than %s\n", resume, diff, config_path);
            return 2;
        }
    }
    // everything below is released at `done`, on success and on every error
    Dataset data = {0};
    Model m = {0};
    AdamState opt = {0};
    Progress prog = {0};
    int *tok = NULL, rc = 0, lock = -1;
    if (dataset_open(&data, &cfg.data, cfg.model.vocab, (uint64_t)cfg.train.seed, err, sizeof(err))) {
        fprintf(stderr, "reformer train: %s\n", err);
        rc = 1;
        goto done;
    }
    if (data.kind == DATA_ENWIK8 && data.count[SPLIT_TRAIN] < (size_t)cfg.data.seq_len) {
        fprintf(stderr, "reformer train: %s: the train split has %zu bytes, fewer than data.seq_len %d\n",
                cfg.data.path, data.count[SPLIT_TRAIN], cfg.data.seq_len);
        rc = 2;
        goto done;
    }
    if (cfg.train.eval_every && data.kind != DATA_COPY && dataset_eval_windows(&data, SPLIT_VALID, cfg.data.seq_len) == 0) {
        fprintf(stderr, "reformer train: %s: the validation split holds no sequence of %d tokens; use a longer file, "
                        "a shorter data.seq_len or train.eval_every 0\n", cfg.data.path, cfg.data.seq_len);
        rc = 2;
        goto done;
    }
    if (data.proportional)
        fprintf(stderr, "reformer train: %s holds %zu bytes, not enwik8's 100,000,000: split 90/5/5%% by proportion "
                        "(%zu / %zu / %zu); bits per character are not comparable with published enwik8 figures\n",
                cfg.data.path, data.len, data.count[0], data.count[1], data.count[2]);
    if (make_dir(out)) {
        fprintf(stderr, "reformer train: %s: cannot create the output directory\n", out);
        rc = 1;
        goto done;
    }
    lock = files_lock_dir(out, err, sizeof(err));
    if (lock < 0) {
        fprintf(stderr, "reformer train: %s\n", err);
        rc = 1;
        goto done;
    }
    threads_set(cfg.train.threads ? cfg.train.threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    int B = cfg.train.batch, T = cfg.data.seq_len;
    if (source_check_memory(&cfg.model, B, T, cfg.opt.optimizer == OPT_ADAM ? 2 : 0, err, sizeof(err))) {
        fprintf(stderr, "reformer train: %s\n", err);
        rc = 1;
        goto done;
    }
    model_init(&m, &cfg.model, B, T, (uint64_t)cfg.train.seed);
    model_optimizer_init(&opt, &cfg.opt, &m);
    TrainState st = {0};
    rng_seed(&st.data_rng, hash_stream((uint64_t)cfg.train.seed, 0xda7a, 0, 0));
    st.best_valid = 1e300;
    if ((resume && checkpoint_load(resume, &m, &opt, &st, err, sizeof(err))) ||
        (init && source_load(init, init_is_hf, &m, NULL, err, sizeof(err)))) {
        fprintf(stderr, "reformer train: %s\n", err);
        rc = 1;
        goto done;
    }
    dataset_train_seek(&data, (uint64_t)st.step * B);  // images: continue where the run stopped
    char path[4096], last[4096], best[4096];
    snprintf(path, sizeof(path), "%s/metrics.jsonl", out);
    snprintf(last, sizeof(last), "%s/last.ckpt", out);
    snprintf(best, sizeof(best), "%s/best.ckpt", out);
    if (progress_open(&prog, path, cfg.train.steps, st.step, resume ? st.step : -1, err, sizeof(err))) {
        fprintf(stderr, "reformer train: %s\n", err);
        rc = 1;
        goto done;
    }
    prog.tokens_per_step = (long long)B * T;
    // the whole resolved config goes to a file; the screen gets one line
    char *resolved = config_to_json(&cfg), cfg_path[4096];
    snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", out);
    int bad = files_write_text(cfg_path, resolved, err, sizeof(err));
    free(resolved);
    if (bad) {
        fprintf(stderr, "reformer train: %s\n", err);
        rc = 1;
        goto done;
    }
    char layers[256] = "";
    for (int l = 0; l < cfg.model.n_layers && strlen(layers) < sizeof(layers) - 8; l++)
        snprintf(layers + strlen(layers), sizeof(layers) - strlen(layers), "%s%s", l ? "," : "",
                 attention_names[cfg.model.attn[l]]);
    char lr[32];
    config_float_text(cfg.opt.lr, lr, sizeof(lr));
    fprintf(stderr, "reformer train: %s, %zu parameters (%d layers %s, d_model %d), batch %d x %d tokens, %lld steps of "
                    "%s lr %s; config in %s\n", resume ? "resuming" : init ? "fine-tuning" : "from scratch", m.n_params,
            cfg.model.n_layers, layers, cfg.model.d_model, B, T, cfg.train.steps,
            cfg.opt.optimizer == OPT_ADAM ? "adam" : "adafactor", lr, cfg_path);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tok = xmalloc((size_t)B * T * sizeof(int));
    double t_log = now_seconds();
    long long tokens_since = 0;
    while (st.step < cfg.train.steps && !stop_requested) {
        if (dataset_train_batch(&data, tok, B, T, &st.data_rng, err, sizeof(err))) {
            progress_note(&prog, "reformer train: %s (last.ckpt keeps the last saved step)", err);
            rc = 1;
            break;
        }
        model_zero_grad(&m);
        // the step's dropout masks and LSH rotations
        double loss = model_forward(&m, tok, B, T, &(ForwardArgs){.step = st.step, .training = 1});
        if (!isfinite(loss)) {  // a diverged run must not overwrite the last good checkpoint
            progress_note(&prog, "reformer train: step %lld: the loss is %g; stopped without saving (%s keeps step %lld's "
                                 "state): lower train.lr or set train.clip", st.step + 1, loss, last, st.step);
            rc = 1;
            break;
        }
        model_backward(&m);
        adam_update(&cfg.opt, &opt, m.params, m.grads, m.n_params);
        st.step++;
        tokens_since += (long long)B * T;
        double now = now_seconds(), tps = tokens_since / (now - t_log + 1e-9);
        int log_line = st.step % cfg.train.log_every == 0 || st.step == cfg.train.steps;
        double vloss = -1, vacc = -1;
        if (cfg.train.eval_every && (st.step % cfg.train.eval_every == 0 || st.step == cfg.train.steps)) {
            EvalResult r;
            // with the rotations of the step just taken
            if (evaluate(&m, &cfg, &data, SPLIT_VALID, cfg.train.eval_tokens, st.step - 1, NULL, &r, NULL, err,
                         sizeof(err))) {
                progress_note(&prog, "reformer train: %s", err);
                rc = 1;
                break;
            }
            vloss = r.loss_nats;
            vacc = r.accuracy;
            if (vloss < st.best_valid) {
                st.best_valid = vloss;
                if (checkpoint_save(best, &cfg, &m, &opt, &st, err, sizeof(err))) {
                    progress_note(&prog, "reformer train: %s", err);
                    rc = 1;
                    break;
                }
            }
        }
        progress_step(&prog, st.step, loss, adam_lr(&cfg.opt, opt.t), tps, log_line, vloss, vacc);
        if (vloss >= 0) {  // the curves so far, DIR/curves.svg (reformer plot draws several runs)
            char svg[4096], perr[512];
            const char *self[1] = {out};
            snprintf(svg, sizeof(svg), "%s/curves.svg", out);
            if (plot_runs(self, 1, PLOT_STEP, svg, perr, sizeof(perr)))  // a picture is not worth stopping for
                progress_note(&prog, "reformer train: note: %s", perr);
        }
        if (log_line) {
            t_log = now_seconds();
            tokens_since = 0;
        }
        if (cfg.train.save_every && st.step % cfg.train.save_every == 0 && st.step < cfg.train.steps &&
            checkpoint_save(last, &cfg, &m, &opt, &st, err, sizeof(err))) {
            progress_note(&prog, "reformer train: %s", err);
            rc = 1;
            break;
        }
    }
    if (rc == 0) {
        if (checkpoint_save(last, &cfg, &m, &opt, &st, err, sizeof(err))) {
            progress_note(&prog, "reformer train: %s", err);
            rc = 1;
        } else if (stop_requested) {
            progress_note(&prog, "reformer train: interrupted at step %lld; saved %s (resume with --resume %s)",
                          st.step, last, last);
        } else {
            progress_note(&prog, "reformer train: done, %lld steps; saved %s", st.step, last);
        }
    }
done:
    if (lock >= 0) close(lock);
    progress_close(&prog);
    xfree(tok);
    dataset_close(&data);
    adam_free(&opt);
    model_free(&m);
    return rc;
}
