// machine.c: cores and memory: sysconf, /proc/meminfo and the ranks of this host.
#include "machine.h"

#include <stdio.h>
#include <unistd.h>

#include "../core/common.h"
#include "dist.h"

int cores_online(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

void threads_apply(int n) {
    if (n <= 0) n = cores_online() / dist_local_size();
    threads_set(n > 0 ? n : 1);
}

double machine_run_bytes(const ReformerConfig *c, int B, int T, int kept_layers, double opt_floats_per_param,
                         size_t *n_params) {
    return (double)plan_bytes_needed(c, B, T, n_params) + (double)*n_params * 4.0 * opt_floats_per_param +
           (kept_layers ? (double)kept_layers * plan_keep_layer_bytes(c, B, T) : 0.0);
}

int machine_check_memory(const ReformerConfig *c, int B, int T, int kept_layers, double opt_floats_per_param,
                         char *err, size_t cap) {
    size_t n_params;
    double need = machine_run_bytes(c, B, T, kept_layers, opt_floats_per_param, &n_params);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    if (have > 0 && need > have)
        return set_error(err, cap, "the model (%zu parameters) needs %.1f GB for batches of %d x %d tokens; this machine "
                                   "has %.1f GB", n_params, need / 1e9, B, T, have / 1e9);
    return 0;
}

double machine_available_memory(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb >= 0) return (double)kb * 1024.0;
    return (double)sysconf(_SC_AVPHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
}
