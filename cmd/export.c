// export.c: `reformer export --ckpt CKPT --out DIR`: our checkpoint as a HuggingFace
// model directory (config.json + model.safetensors, and reformer.json with the token offset).
#include <stdio.h>
#include <string.h>

#include "../core/common.h"
#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "model_source.h"
#include "hf_model.h"

static const char *USAGE = "reformer export --ckpt CKPT --out DIR";

int cmd_export(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (arg_is_help(f)) {
            printf("usage: %s\n\nWrites CKPT's model as DIR/config.json and DIR/model.safetensors, the layout\n"
                   "transformers' ReformerModelWithLMHead.from_pretrained(DIR) loads, plus DIR/reformer.json\n"
                   "with data.token_offset (token = byte + offset), which HF's config cannot hold.\n", USAGE);
            return 0;
        } else if (!strcmp(f, "--ckpt")) ckpt = arg_value(argc, argv, &i);
        else if (!strcmp(f, "--out")) out = arg_value(argc, argv, &i);
        else usage_error("export", USAGE, "unknown option '%s'", f);
    }
    if (!ckpt || !out) usage_error("export", USAGE, "--ckpt and --out are required");
    char err[1024];
    Config cfg;
    if (checkpoint_read_config(ckpt, &cfg, err, sizeof(err))) {
        fprintf(stderr, "reformer export: %s\n", err);
        return 1;
    }
    if (source_check_memory(&cfg.model, 1, cfg.data.seq_len, 0, 0, err, sizeof(err))) {
        fprintf(stderr, "reformer export: %s\n", err);
        return 1;
    }
    Model m;
    model_init(&m, &cfg.model, 1, cfg.data.seq_len, (uint64_t)cfg.train.seed);
    int rc = checkpoint_load(ckpt, &m, NULL, NULL, err, sizeof(err)) || hf_export(out, &m, err, sizeof(err)) ||
             hf_write_token_offset(out, cfg.data.token_offset, err, sizeof(err));
    if (rc) fprintf(stderr, "reformer export: %s\n", err);
    model_free(&m);
    return rc ? 1 : 0;
}
