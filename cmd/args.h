// args.h: the command line. Each command describes its flags in one table (CommandSpec) that
// drives its usage line, its --help and its parsing; values are parsed strictly (every failure
// prints one line naming the flag and exits 2; no value is silently clamped or defaulted).
// Every message a command prints starts "reformer CMD: " (cmd_say).
#ifndef REFORMER_ARGS_H
#define REFORMER_ARGS_H

#include <stddef.h>

#include "../core/common.h"  // set_error

#define REFORMER_VERSION "0.1.0"

// ---- messages ----
// The running command's name ("train"), set once by main; "" before.
void cmd_set_name(const char *name);
// Prints "reformer CMD: MESSAGE" (one line) to stderr.
void cmd_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// cmd_say, then returns rc: `return cmd_fail(1, "%s", err);`
int cmd_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// ---- flag tables ----
typedef enum {
    FLAG_SWITCH,  // int: 1 when given
    FLAG_TEXT,    // const char *
    FLAG_INT,     // int in [lo, hi]
    FLAG_LONG,    // long long in [lo, hi]
    FLAG_FLOAT,   // float in [lo, hi]
    FLAG_CHOICE,  // int: the index of the value in choices
    FLAG_CUSTOM,  // parse(flags, value) stores it, or exits 2 through usage_error
} FlagKind;

typedef struct {
    const char *name;            // "--ckpt"
    const char *value;           // "CKPT": the value's name in usage and help (NULL: a switch, or a
                                 // choice, which shows its choices)
    FlagKind kind;
    size_t offset;               // offsetof the field in the command's flags struct
    double lo, hi;               // FLAG_INT, FLAG_LONG, FLAG_FLOAT
    const char *const *choices;  // FLAG_CHOICE, NULL-terminated
    const char *help;            // for --help; '\n' continues on an indented line
    void (*parse)(void *flags, const char *value);  // FLAG_CUSTOM
    int required;                // a FLAG_TEXT that flags_parse refuses a command line without
} Flag;

typedef struct {
    const char *name;        // "eval"
    const char *positional;  // the positional part of the usage ("CONFIG.json", "[CONFIG.json]"), or ""
    int max_positional;      // arguments that are not flags it takes (0: none)
    const char *about;       // the paragraph --help prints before the flags
    const Flag *flags;       // {NULL}-terminated
} CommandSpec;

// Parses argv[1..] against spec into flags (which hold the defaults) and the positional
// arguments into pos (at most spec->max_positional; *n_pos counts them). Prints the usage
// and --help and returns 1 when asked for help; an unknown flag, a bad value, a positional
// too many or a required flag missing exits 2 with one line.
int flags_parse(const CommandSpec *spec, void *flags, int argc, char **argv, const char **pos, int *n_pos);
// Prints "reformer CMD: MESSAGE; usage: USAGE" (one line, the usage made from spec) to stderr,
// then exits 2.
void usage_error(const CommandSpec *spec, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

// Parses `text` as a whole integer in [lo, hi] for `flag`, or exits 2.
long long arg_int(const char *flag, const char *text, long long lo, long long hi);
// Parses `text` as a whole finite number in [lo, hi] for `flag`, or exits 2.
double arg_float(const char *flag, const char *text, double lo, double hi);
// Returns the index of `text` in the NULL-terminated `choices`, or exits 2.
int arg_choice(const char *flag, const char *text, const char *const *choices);


#endif
