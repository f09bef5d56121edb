// fuzz_checkpoint.c: our checkpoints (cmd/checkpoint.c): the config, then the tensors into
// a model built from it when that model is small.
#include "../../cmd/checkpoint.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, "fuzz.ckpt");
    Config cfg;
    char err[1024] = "";
    int rc = checkpoint_read_config(path, &cfg, err, sizeof(err));
    fuzz_check_message(rc, err);
    size_t n_params;
    if (rc || plan_bytes_needed(&cfg.model, cfg.train.batch, cfg.data.seq_len, &n_params) > (64u << 20)) return 0;
    Model m;
    model_init(&m, &cfg.model, cfg.train.batch, cfg.data.seq_len, 1);
    OptimState opt = {0};
    optim_init_model(&opt, &cfg.opt, &m, 0, m.spec.n_params);
    TrainState st;
    rc = checkpoint_load(path, &m, &opt, &st, err, sizeof(err));
    fuzz_check_message(rc, err);
    optim_free(&opt);
    model_free(&m);
    return 0;
}
