// fuzz_config.c: our JSON config (cmd/config.c): parse, validate, print back.
#include "../../cmd/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1), err[1024] = "";
    memcpy(text, data, size);
    text[size] = '\0';
    Config c;
    config_default(&c);
    int rc = config_parse(text, "fuzz.json", &c, err, sizeof(err));
    fuzz_check_message(rc, err);
    if (!rc) {
        // what it accepted prints back to a config it accepts again, unchanged
        char *json = config_to_json(&c);
        Config again;
        config_default(&again);
        char key[160];
        if (config_parse(json, "again", &again, err, sizeof(err)) || config_first_difference(&c, &again, "model", key, sizeof(key))) {
            fprintf(stderr, "printed config does not read back: %s\n", err);
            abort();
        }
        free(json);
    }
    free(text);
    return 0;
}
