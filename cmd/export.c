// export.c: `reformer export --ckpt CKPT --out DIR`: our checkpoint as a HuggingFace
// model directory (config.json + model.safetensors, and reformer.json with the token offset).
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../core/common.h"
#include "args.h"
#include "machine.h"
#include "checkpoint.h"
#include "commands.h"
#include "model_source.h"
#include "hf_model.h"

typedef struct {
    const char *ckpt, *out;
} Flags;

static const Flag FLAGS[] = {
    {"--ckpt", "CKPT", FLAG_TEXT, offsetof(Flags, ckpt), .help = "the checkpoint to export (required)", .required = 1},
    {"--out", "DIR", FLAG_TEXT, offsetof(Flags, out), .help = "the directory to write (required)", .required = 1},
    {NULL},
};

static const CommandSpec SPEC = {
    "export", "", 0,
    "Writes CKPT's model as DIR/config.json and DIR/model.safetensors, the layout\n"
    "transformers loads (ReformerModelWithLMHead, ReformerForMaskedLM or\n"
    "ReformerForSequenceClassification, as the model's head and objective are), plus DIR/reformer.json\n"
    "with data.token_offset (token = byte + offset), which HF's config cannot hold.",
    FLAGS,
};

int cmd_export(int argc, char **argv) {
    Flags f = {0};
    int n_pos;
    if (flags_parse(&SPEC, &f, argc, argv, NULL, &n_pos)) return 0;
    const char *ckpt = f.ckpt, *out = f.out;
    char err[1024];
    Config cfg;
    if (checkpoint_read_config(ckpt, &cfg, err, sizeof(err))) {
        cmd_say("%s", err);
        return 1;
    }
    if (machine_check_memory(&cfg.model, 1, cfg.data.seq_len, 0, 0, err, sizeof(err))) {
        cmd_say("%s", err);
        return 1;
    }
    Model m;
    model_init(&m, &cfg.model, 1, cfg.data.seq_len, (uint64_t)cfg.train.seed);
    int rc = checkpoint_load(ckpt, &m, NULL, NULL, err, sizeof(err)) || hf_export(out, &m, cfg.train.objective, err, sizeof(err)) ||
             hf_write_token_offset(out, cfg.data.token_offset, err, sizeof(err));
    if (rc) cmd_say("%s", err);
    model_free(&m);
    return rc ? 1 : 0;
}
