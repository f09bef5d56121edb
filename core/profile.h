// profile.h: wall time per phase of a step, summed since the last profile_reset, so
// `reformer bench` can say where a step's time goes. The timed calls sit outside the
// kernels' OpenMP regions and number a few hundred per step, so the cost is negligible.
#ifndef REFORMER_PROFILE_H
#define REFORMER_PROFILE_H

#include <omp.h>

#include "common.h"

enum {
    PROFILE_ATTN_CORE,   // LSH / local / full attention kernels, hashing and sorting included
    PROFILE_ATTN_DENSE,  // attention LayerNorm, projections, output projection and their gradients
    PROFILE_FFN,         // chunked feed-forward, forward and backward
    PROFILE_HEAD,        // final LayerNorm, LM head and loss
    PROFILE_OTHER,       // embedding, optimizer, the rest
    PROFILE_PHASES
};

extern double profile_seconds[PROFILE_PHASES];
// The dense layers' sgemm calls (core/linear.c) across all phases: wall seconds and FLOPs,
// so bench can say how much of a step is dense sgemm and how fast it runs there.
extern double profile_gemm_seconds, profile_gemm_flops;
// Within attn_core: LSH hashing (rotations, argmax, sort) and the chunked attention kernels
// (core/attention_chunked.c); the rest of attn_core moves rows between position and sorted order.
extern double profile_hash_seconds, profile_kernel_seconds;
// Within the dense phases: every LayerNorm (forward and backward) and the feed-forward's
// activation and its gradient: the element-wise passes that are not sgemm.
extern double profile_norm_seconds, profile_act_seconds;
extern const char *const profile_names[PROFILE_PHASES];

// When a batch's sequences run on separate threads (core/model.c), only the first thread's
// calls count: its sequences are a fair sample of the step, and one writer races with none.
static inline int profile_counting(void) { return omp_get_active_level() == 0 || omp_get_ancestor_thread_num(1) == 0; }
static inline void profile_add(int phase, double since) {
    if (profile_counting()) profile_seconds[phase] += now_seconds() - since;
}
static inline void profile_add_to(double *seconds, double since) {
    if (profile_counting()) *seconds += now_seconds() - since;
}
void profile_reset(void);

#endif
