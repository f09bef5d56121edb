// attention.h: the attention half of a reversible layer, F(x) = Attention(LayerNorm(x)),
// for one sequence (T positions) at a time, HuggingFace ReformerAttention semantics:
// LayerNorm -> per-head projections without bias -> LSH / local / full attention ->
// output projection without bias -> hidden dropout.
// Backward functions add (+=) into gradients; the caller zeroes them.
#ifndef REFORMER_ATTENTION_H
#define REFORMER_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "attention_local.h"
#include "attention_lsh.h"

enum { ATTN_LSH = 0, ATTN_LOCAL = 1, ATTN_FULL = 2 };
// Their names in configs and on the command line, indexed by the enum (NULL-terminated).
extern const char *const attention_names[];

typedef struct {
    float *ln_w, *ln_b;  // (C), (C)
    float *qk;           // (NH*HS, C): LSH/full query_key, local query
    float *k;            // (NH*HS, C): local key; NULL otherwise
    float *v;            // (NH*HS, C)
    float *o;            // (C, NH*HS)
} AttnParams;

typedef struct {
    int kind, T, C, NH, HS;
    int h_bf16;  // the LayerNorm output is held in bf16 (bf16 precision): its buffer is half the size
    float eps, hidden_dropout;
    LshShape lsh;      // for lsh and full (plain) kinds; stream set per call
    LocalShape local;  // for local
} AttnShape;

// An LSH layer's bucket order, (NH, NR*T) for one sequence (or B of them, one after
// another): hashed afresh and written, or read as an earlier forward wrote it.
typedef struct {
    int *order;         // NULL for layers without one (local, full, LSH at T <= chunk)
    int hash;           // 1: hash with rot and write order; 0: reuse order (gradient checks)
    const float *rot;   // with hash: rotations (NH, HS, NR, cols)
} BucketOrder;

// Ints of one sequence's bucket order, (NH, NR*T): every layer's record has this length, so
// that a model's records do not depend on which layers hash.
size_t attention_order_ints(const AttnShape *s);

// Buffers for one sequence, allocated once and shared by every layer. The output
// projection runs head by head, so no (T, NH*HS) buffer exists.
typedef struct {
    float *h, *dh;               // (T, C) LayerNorm output and its gradient
    float *f, *df;               // (T, C) with hidden dropout only: F before the mask, dy1 * mask
    float *q, *k, *v, *out;      // (T, HS) one head; k for local attention only (else NULL)
    float *g, *dq, *dk, *dv;     // (T, HS) gradients of out, q, k, v (dk: local only; for
                                 // LSH and full, dq and dv are q and v, written over)
    float *mean, *rstd;          // (T)
    float *head;                 // scratch of one head's attention core
} AttnWork;

// Floats for AttnWork; with hidden dropout > 0 the two dropout buffers are included.
size_t attention_work_floats(const AttnShape *s);
AttnWork attention_work_views(float *base, const AttnShape *s);

// Floats one sequence's forward keeps so that its backward recomputes nothing: the
// LayerNorm output and statistics, each head's projections and its core's kept state.
size_t attention_keep_floats(const AttnShape *s);

// y1 (T, C) += F(x2 (T, C)); an LSH layer hashes or reuses its bucket order as `buckets`
// says. stream seeds this call's dropout masks. keep: NULL, or attention_keep_floats(s)
// floats that receive what the backward would recompute.
void attention_forward(float *y1, const BucketOrder *buckets, const float *x2,
                       const AttnParams *p, const AttnShape *s, uint64_t stream, AttnWork *w,
                       float *keep);

// Recomputes F(x2) with the bucket order the forward used (or, given kept, reads what that
// forward kept, and consumes it) and backpropagates dy1 through it: dx2 += dF^T dy1,
// parameter gradients +=. If y1 is given, also y1 -= F(x2): the reversible
// inverse x1 = y1 - F(x2).
void attention_backward(float *dx2, AttnParams *grad, float *y1, const float *dy1,
                        const int *sorted, const float *x2, const AttnParams *p,
                        const AttnShape *s, uint64_t stream, AttnWork *w, float *kept);

#endif
