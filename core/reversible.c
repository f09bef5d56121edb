// reversible.c: the RevNet wiring of attention and feed-forward for a batch.
#include "reversible.h"

#include <string.h>

#include "common.h"
#include "profile.h"
#include "rng.h"

enum { SITE_ATTN = 21, SITE_FFN = 22 };

uint64_t reversible_attn_stream(uint64_t stream, int b) { return hash_stream(stream, SITE_ATTN, b, 0); }
uint64_t reversible_ffn_stream(uint64_t stream, int b) { return hash_stream(stream, SITE_FFN, b, 0); }

LayerShape layer_shape_at(const LayerShape *fixed, const LayerPass *pass) {
    LayerShape s = *fixed;
    int T = pass->T;
    s.attn.T = s.attn.lsh.T = s.attn.local.T = T;
    s.attn.lsh.plain = s.attn.kind == ATTN_FULL || T <= s.attn.lsh.win.chunk;
    if (!pass->training)
        s.attn.hidden_dropout = s.attn.lsh.dropout = s.attn.local.dropout = s.ffn.dropout = 0.0f;
    return s;
}

void layer_shape_seq(LayerShape *s, const LayerPass *pass, int b) {
    int v = pass->valid && pass->valid[b] < pass->T ? pass->valid[b] : 0;
    s->attn.lsh.win.valid = s->attn.local.win.valid = v;
}

// ---- kept activations ----
// One sequence's keep: the layer's inputs x1, x2 (T, C) each, then the attention half's and
// the feed-forward half's kept floats. Sequences are reversible_keep_floats(fixed) apart.

size_t reversible_keep_floats(const LayerShape *s) {
    size_t T = s->attn.T;
    return 2 * T * s->attn.C + attention_keep_floats(&s->attn) + ffn_keep_floats(&s->ffn, T);
}

typedef struct {
    float *x1, *x2, *attn, *ffn;
} SeqKeep;

static SeqKeep seq_keep(float *keep, int b, const LayerShape *fixed, const LayerShape *s) {
    SeqKeep k = {0};
    if (!keep) return k;
    size_t n = (size_t)s->attn.T * s->attn.C;
    k.x1 = keep + b * reversible_keep_floats(fixed);
    k.x2 = k.x1 + n;
    k.attn = k.x2 + n;
    k.ffn = k.attn + attention_keep_floats(&s->attn);
    return k;
}

void reversible_forward(float *x1, float *x2, const BucketOrder *buckets, const LayerParams *p,
                        const LayerShape *fixed, const LayerPass *pass, LayerWork *w, float *keep) {
    LayerShape shape = layer_shape_at(fixed, pass), *s = &shape;
    uint64_t stream = pass->stream;
    size_t n = (size_t)s->attn.T * s->attn.C;
    AttnWork aw = attention_work_views(w->attn, &s->attn);
    for (int b = 0; b < pass->B; b++) {
        BucketOrder seq = *buckets;
        if (seq.order) seq.order += b * attention_order_ints(&s->attn);
        SeqKeep k = seq_keep(keep, b, fixed, s);
        layer_shape_seq(s, pass, b);
        if (keep) {  // the exact inputs: the backward then needs no inverse
            memcpy(k.x1, x1 + b * n, n * sizeof(float));
            memcpy(k.x2, x2 + b * n, n * sizeof(float));
        }
        double t0 = now_seconds(), core = profile_seconds[PROFILE_ATTN_CORE];
        mem_poison_floats(w->attn, attention_work_floats(&s->attn));
        attention_forward(x1 + b * n, &seq, x2 + b * n, &p->attn, &s->attn,
                          reversible_attn_stream(stream, pass->first_seq + b), &aw, k.attn);
        // the dense part is the attention layer's time less its core's
        profile_add(PROFILE_ATTN_DENSE, t0 + (profile_seconds[PROFILE_ATTN_CORE] - core));
        t0 = now_seconds();
        FfnShape f = s->ffn;
        f.stream = reversible_ffn_stream(stream, pass->first_seq + b);
        mem_poison_floats(w->ffn, ffn_scratch_floats(&f));
        ffn_forward(x2 + b * n, x1 + b * n, &p->ffn, s->attn.T, &f, w->ffn, k.ffn);
        profile_add(PROFILE_FFN, t0);
    }
}

void reversible_backward(float *y1, float *y2, float *dy1, float *dy2, LayerParams *grad,
                         const int *order, const LayerParams *p, const LayerShape *fixed,
                         const LayerPass *pass, LayerWork *w, float *kept) {
    LayerShape shape = layer_shape_at(fixed, pass), *s = &shape;
    uint64_t stream = pass->stream;
    size_t n = (size_t)s->attn.T * s->attn.C;
    AttnWork aw = attention_work_views(w->attn, &s->attn);
    for (int b = 0; b < pass->B; b++) {
        FfnShape f = s->ffn;
        f.stream = reversible_ffn_stream(stream, pass->first_seq + b);
        SeqKeep k = seq_keep(kept, b, fixed, s);
        layer_shape_seq(s, pass, b);
        // x2 = y2 - G(y1) (or kept); dy1 += G'(y1)^T dy2
        double t0 = now_seconds();
        mem_poison_floats(w->ffn, ffn_scratch_floats(&f));
        ffn_backward(dy1 + b * n, &grad->ffn, kept ? NULL : y2 + b * n, dy2 + b * n, y1 + b * n, &p->ffn,
                     s->attn.T, &f, w->ffn, k.ffn);
        if (kept) memcpy(y2 + b * n, k.x2, n * sizeof(float));
        profile_add(PROFILE_FFN, t0);
        t0 = now_seconds();
        double core = profile_seconds[PROFILE_ATTN_CORE];
        // x1 = y1 - F(x2) (or kept); dx2 = dy2 + F'(x2)^T dy1
        const int *seq = order ? order + b * attention_order_ints(&s->attn) : NULL;
        mem_poison_floats(w->attn, attention_work_floats(&s->attn));
        attention_backward(dy2 + b * n, &grad->attn, kept ? NULL : y1 + b * n, dy1 + b * n, seq, y2 + b * n,
                           &p->attn, &s->attn, reversible_attn_stream(stream, pass->first_seq + b), &aw, k.attn);
        if (kept) memcpy(y1 + b * n, k.x1, n * sizeof(float));
        profile_add(PROFILE_ATTN_DENSE, t0 + (profile_seconds[PROFILE_ATTN_CORE] - core));
    }
}
