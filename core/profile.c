// profile.c: the per-phase time counters of profile.h.
#include "profile.h"

double profile_seconds[PROFILE_PHASES];
double profile_gemm_seconds, profile_gemm_flops;
double profile_hash_seconds, profile_kernel_seconds;
double profile_norm_seconds, profile_act_seconds;
const char *const profile_names[PROFILE_PHASES] = {"attn_core", "attn_dense", "ffn", "head", "other"};

void profile_reset(void) {
    for (int i = 0; i < PROFILE_PHASES; i++) profile_seconds[i] = 0.0;
    profile_gemm_seconds = profile_gemm_flops = profile_hash_seconds = profile_kernel_seconds = 0.0;
    profile_norm_seconds = profile_act_seconds = 0.0;
}
