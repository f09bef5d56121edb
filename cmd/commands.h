// commands.h: the subcommands of the reformer binary, one file each.
#ifndef REFORMER_COMMANDS_H
#define REFORMER_COMMANDS_H

#include "config.h"

int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_plot(int argc, char **argv);

#endif
