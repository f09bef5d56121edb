// eval.c: `reformer eval [CONFIG.json] --ckpt CKPT`: loss, bits and accuracy of a split.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/common.h"
#include "../core/model.h"
#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "evaluate.h"

static const char *USAGE =
    "reformer eval [CONFIG.json] --ckpt CKPT [--split valid|test] [--max-tokens N] [--threads N] [--json]";
static const char *const SPLITS[] = {"valid", "test", NULL};

int cmd_eval(int argc, char **argv) {
    const char *config_path = NULL, *ckpt = NULL;
    int split = 0, json = 0, threads = 0;
    long long max_tokens = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("usage: %s\n\n"
                   "Evaluates a checkpoint: mean loss in nats, bits per token (bits per character\n"
                   "for bytes), tokens evaluated, and for the copy task the accuracy on the copied\n"
                   "half. CONFIG.json, when given, must describe the checkpoint's model.\n\n"
                   "  --ckpt CKPT       checkpoint (required)\n"
                   "  --split S         valid (default) or test\n"
                   "  --max-tokens N    stop after about N predicted tokens (default: the whole split)\n"
                   "  --threads N       threads (default: all cores)\n"
                   "  --json            one JSON object: loss_nats, bits, tokens, accuracy\n", USAGE);
            return 0;
        } else if (!strcmp(f, "--ckpt")) ckpt = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--split")) split = arg_choice(f, arg_value(argc, argv, &i), SPLITS);
        else if (!strcmp(f, "--max-tokens")) max_tokens = arg_int(f, arg_value(argc, argv, &i), 1, 1LL << 50);
        else if (!strcmp(f, "--threads")) threads = (int)arg_int(f, arg_value(argc, argv, &i), 1, 1024);
        else if (!strcmp(f, "--json")) json = 1;
        else if (f[0] == '-') usage_error("eval", USAGE, "unknown option '%s'", f);
        else if (!config_path) config_path = f;
        else usage_error("eval", USAGE, "unexpected argument '%s'", f);
    }
    if (!ckpt) usage_error("eval", USAGE, "missing --ckpt");
    char err[1024];
    Config cfg;
    if (checkpoint_read_config(ckpt, &cfg, err, sizeof(err))) {
        fprintf(stderr, "reformer eval: %s\n", err);
        return 1;
    }
    if (config_path) {
        Config given;
        config_default(&given);
        if (config_load(config_path, &given, err, sizeof(err))) {
            fprintf(stderr, "reformer eval: %s\n", err);
            return 2;
        }
        char *a = config_to_json(&given), *b = config_to_json(&cfg);
        char *ma = strstr(a, "\"data\""), *mb = strstr(b, "\"data\"");  // model section precedes data
        int same = ma && mb && (ma - a) == (mb - b) && !strncmp(a, b, ma - a);
        free(a);
        free(b);
        if (!same) {
            fprintf(stderr, "reformer eval: %s describes a different model than %s\n", config_path, ckpt);
            return 2;
        }
        cfg.data = given.data;
    }
    threads_set(threads ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    Model m;
    model_init(&m, &cfg.model, cfg.train.batch, cfg.data.seq_len, (uint64_t)cfg.train.seed);
    TrainState st;
    if (checkpoint_load(ckpt, &m, NULL, &st, err, sizeof(err))) {
        fprintf(stderr, "reformer eval: %s\n", err);
        model_free(&m);
        return 1;
    }
    m.step = st.step;
    Dataset data;
    if (dataset_open(&data, cfg.data.kind, cfg.data.path, cfg.model.vocab, err, sizeof(err))) {
        fprintf(stderr, "reformer eval: %s\n", err);
        model_free(&m);
        return 1;
    }
    EvalResult r;
    evaluate(&m, &cfg, &data, split == 0 ? SPLIT_VALID : SPLIT_TEST, max_tokens, &r);
    dataset_close(&data);
    if (json) {
        printf("{\"split\": \"%s\", \"loss_nats\": %.6f, \"bits\": %.6f, \"tokens\": %lld", SPLITS[split],
               r.loss_nats, r.bits, r.tokens);
        if (r.accuracy >= 0) printf(", \"accuracy\": %.6f", r.accuracy);
        printf("}\n");
    } else {
        printf("split %s: loss %.4f nats, %.4f bits per %s, %lld tokens", SPLITS[split], r.loss_nats,
               r.bits, cfg.data.kind == DATA_ENWIK8 ? "character" : "token", r.tokens);
        if (r.accuracy >= 0) printf(", copied-half accuracy %.2f%%", 100 * r.accuracy);
        printf("\n");
    }
    model_free(&m);
    return 0;
}
