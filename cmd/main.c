// main.c: the subcommand table of the reformer binary.
#include <stdio.h>
#include <string.h>

#include "../core/common.h"
#include "args.h"
#include "commands.h"
#include "dist.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command COMMANDS[] = {
    {"train", cmd_train, "train the model of CONFIG.json (reformer train configs/copy.json)"},
    {"eval", cmd_eval, "loss, bits per token and accuracy of a checkpoint"},
    {"sample", cmd_sample, "generate from a checkpoint (reformer sample --ckpt run/last.ckpt)"},
    {"export", cmd_export, "write a checkpoint as a HuggingFace model directory"},
    {"plot", cmd_plot, "draw the curves of runs as SVG (reformer plot run1 run2 --out curves.svg)"},
    {"bench", cmd_bench, "time training or forward steps (reformer bench --seq 65536)"},
};
#define N_COMMANDS (sizeof(COMMANDS) / sizeof(COMMANDS[0]))

static void print_help(FILE *out) {
    fprintf(out, "usage: reformer COMMAND [ARGS]   (reformer COMMAND --help for its options)\n\n"
                 "A Reformer (Kitaev, Kaiser, Levskaya 2020) in C: LSH attention, reversible\n"
                 "layers, chunked feed-forward, hand-written backward passes.\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-8s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out, "\nOther:\n  --help-config  every config key with its default\n  --version\n");
}

static int run(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("reformer %s\n", REFORMER_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help-config")) {
        config_print_help(stdout);
        return 0;
    }
    if (dist_size() > 1 && strcmp(argv[1], "train")) {
        cmd_set_name(argv[1]);
        if (dist_rank() == 0) cmd_say("runs in one process; under mpirun only train uses several");
        return 2;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) {
            cmd_set_name(COMMANDS[i].name);
            return COMMANDS[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "reformer: unknown command '%s'\nusage: reformer COMMAND [ARGS]; reformer --help lists them\n", argv[1]);
    return 2;
}

int main(int argc, char **argv) {
    runtime_choose(argv);
    dist_init(&argc, &argv);  // under mpirun (an MPI build): this process is one rank of the job
    int rc = run(argc, argv);
    dist_finalize();
    return rc;
}
