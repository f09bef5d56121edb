// attention_lsh.c: hashing, sorting, gathering and round combination around the
// shared chunked kernel.
#include "attention_lsh.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "attention_chunked.h"
#include "common.h"
#include "gemm.h"

#define LEN_NORM_EPS 1e-6f  // HF _len_norm
#define MAX_ROUNDS 16
// Positions hashed at a time: their rotations (at most LSH_MAX_ROTATION_COLS each) stay in cache
// until their argmax is taken.
#define HASH_ROWS 64
// B6 at 65,536 positions (32 MB arrays) on a 2-core EPYC with 32 MB of L3: moves 3.4% of the
// step streaming, 3.8% reading in place; on a 16-core Intel Xeon (Sapphire Rapids) 4.9% against 7.1%.
size_t lsh_stream_bytes = (size_t)16 << 20;

// Rows move between position order and sorted order in every pass around the kernel. At a
// million positions and more a row at a sorted place is never in cache, and reading rows in one
// order to write them in the other stalls on every read; so once the arrays outgrow the cache
// (lsh_stream_bytes) every pass reads its rows in the order they lie and writes each to its place
// with streaming stores, which neither read the line first nor evict what is in cache (measured
// on a 2-core EPYC at 2,097,152 positions: 0.17 s a gather, against 0.36-0.45 s reading in sorted
// order with prefetching). The stores need 16-byte alignment, which malloc gives and rows of a
// multiple of 16 bytes keep (4 floats, 8 bf16 values); each row's bytes are copied, so the bits
// are the same either way. Rows of row_bytes each.
static int streaming(const void *base, size_t rows, size_t row_bytes) {
#ifdef __SSE2__
    return rows * row_bytes > lsh_stream_bytes && row_bytes % 16 == 0 && ((uintptr_t)base & 15) == 0;
#else
    (void)base, (void)rows, (void)row_bytes;
    return 0;
#endif
}

static inline void put_row(void *dst, const void *src, size_t row_bytes, int stream) {
#ifdef __SSE2__
    if (stream) {
        for (size_t b = 0; b < row_bytes; b += 16)
            _mm_stream_si128((__m128i *)((char *)dst + b), _mm_loadu_si128((const __m128i *)((const char *)src + b)));
        return;
    }
#endif
    (void)stream;
    memcpy(dst, src, row_bytes);
}

static void stream_done(int stream) {
#ifdef __SSE2__
    if (stream) _mm_sfence();  // streaming stores are weakly ordered: drain them before others read
#endif
    (void)stream;
}

int lsh_items(const LshShape *s) { return s->plain ? s->T : s->n_hashes * s->T; }

int lsh_rotation_cols(const LshBuckets *b) {
    int cols = 0;
    for (int f = 0; f < b->n_factors; f++) cols += b->factor[f] / 2;
    return cols;
}

int lsh_bucket_count(const LshBuckets *b) {
    int nb = 1;
    for (int f = 0; f < b->n_factors; f++) nb *= b->factor[f];
    return nb;
}

static ChunkAttnShape kernel_shape(const LshShape *s) {
    ChunkAttnShape a = {0};
    a.n = lsh_items(s);
    a.hs = s->HS;
    a.win = s->win;
    if (s->plain) a.win = (Window){s->T, 0, 0, s->win.causal, s->win.valid};
    a.self_mask = 1;
    a.dropout = s->dropout;
    a.stream = s->stream;
    return a;
}

// Scratch layout of one head call; N items of HS floats.
typedef struct {
    float *q, *v;         // (N, HS) gathered queries (= the keys before their scale), values
    uint16_t *v16;        // (N, HS) with v_bf16 the values in bf16 instead (v NULL)
    float *o;             // (N, HS) sorted outputs; in backward, their gradients
    float *dqk, *dv;      // (N, HS) sorted gradients (dqk: keys' and queries' summed)
    float *kscale;        // (N) lsh_key_scale of each item: its key is q * kscale
    float *lse, *dlse, *delta;  // (N)
    int *pos, *undo;      // (N) position of each item; item of each (round, position)
    float *kernel;        // threads * chunk_attention_scratch_floats
} Work;

// Floats of the gathered values: (N, HS), or half as many in bf16.
static size_t value_floats(const LshShape *s) {
    size_t nh = (size_t)lsh_items(s) * s->HS;
    return s->v_bf16 ? (nh + 1) / 2 : nh;
}

static Work work_views(float *scratch, const LshShape *s) {
    size_t N = lsh_items(s), nh = N * s->HS;
    Work w;
    w.q = scratch;
    w.v = s->v_bf16 ? NULL : w.q + nh;
    w.v16 = s->v_bf16 ? (uint16_t *)(w.q + nh) : NULL;
    w.o = w.q + nh + value_floats(s);
    w.dqk = w.o + nh;
    w.dv = w.dqk + nh;
    w.kscale = w.dv + nh;
    w.lse = w.kscale + N;
    w.dlse = w.lse + N;
    w.delta = w.dlse + N;
    w.pos = (int *)(w.delta + N);
    w.undo = w.pos + N;
    w.kernel = (float *)(w.undo + N);
    return w;
}

size_t lsh_scratch_floats(const LshShape *s) {
    size_t N = lsh_items(s);
    ChunkAttnShape a = kernel_shape(s);
    size_t kernel = chunk_attention_scratch_floats(&a) * threads_get();
    size_t rotated = (size_t)s->T * s->n_hashes + lsh_bucket_count(&s->buckets) + 1 +  // + padding's bucket
                     (size_t)threads_get() * HASH_ROWS * s->n_hashes * lsh_rotation_cols(&s->buckets);
    size_t work = 4 * N * s->HS + value_floats(s) + 6 * N + kernel;
    return work > rotated ? work : rotated;
}

size_t lsh_keep_floats(const LshShape *s) { return (size_t)lsh_items(s) * (s->HS + 1); }

LshBuckets lsh_default_buckets(int T, int chunk, int max_pos) {
    int x = 2 * (T / chunk), p = 0;
    while ((x >> p) > 1) p++;  // p = bit_length(x) - 1
    long n = 1L << p;
    int limit = 2 * imax((int)sqrt((double)(max_pos / chunk)), chunk);
    if (n > limit) return (LshBuckets){2, {1 << (p / 2), 1 << (p - p / 2)}};
    return (LshBuckets){1, {(int)n, 0}};
}

// The bucket of one round's rotated vector x (cols): per factor, argmax over
// concat(x, -x) with ties to the first as torch.argmax, combined mixed-radix.
static int bucket_of(const float *x, const LshShape *s) {
    int b = 0, radix = 1, off = 0;
    for (int f = 0; f < s->buckets.n_factors; f++) {
        int half = s->buckets.factor[f] / 2, arg = 0;
        if (half == 0) continue;  // a factor of one bucket (eval --attn chunks)
        // the largest of x and of -x (min and max reduce exactly, so these vectorise), then the
        // first index that holds it; x's half comes first, so it wins a tie with -x's
        const float *y = x + off;
        float mx = y[0], mn = y[0];
        #pragma omp simd reduction(max : mx) reduction(min : mn)
        for (int j = 1; j < half; j++) {
            mx = y[j] > mx ? y[j] : mx;
            mn = y[j] < mn ? y[j] : mn;
        }
        int negated = !(mx >= -mn);
        float want = negated ? mn : mx;
        while (arg < half && y[arg] != want) arg++;
        if (arg == half) arg = 0;  // a row with NaNs: no index holds the maximum; bucket 0
        else if (negated) arg += half;
        b += radix * arg;
        radix *= s->buckets.factor[f];
        off += half;
    }
    return b;
}

void lsh_buckets_of(int *bucket, const float *qk, const float *rot, const LshShape *s) {
    int NR = s->n_hashes, cols = lsh_rotation_cols(&s->buckets), rc = NR * cols;
    float rotated[LSH_MAX_ROTATION_COLS];
    CHECK(rc <= LSH_MAX_ROTATION_COLS, "%d rotation columns", rc);
    for (int j = 0; j < rc; j++) {
        float acc = 0.0f;
        for (int d = 0; d < s->HS; d++) acc += qk[d] * rot[(size_t)d * rc + j];
        rotated[j] = acc;
    }
    for (int r = 0; r < NR; r++) bucket[r] = bucket_of(rotated + r * cols, s);
}

float lsh_key_scale(const float *qk, int HS) {
    double ss = 0.0;
    for (int d = 0; d < HS; d++) ss += (double)qk[d] * qk[d];
    return 1.0f / sqrtf((float)(ss / HS) + LEN_NORM_EPS) * (1.0f / sqrtf((float)HS));
}

void lsh_sort_round(int *order, const int *bucket, int n, int nb, int *count) {
    memset(count, 0, (size_t)nb * sizeof(int));
    for (int t = 0; t < n; t++) count[bucket[t]]++;
    for (int b = 0, at = 0; b < nb; b++) {
        int c = count[b];
        count[b] = at;
        at += c;
    }
    for (int t = 0; t < n; t++) order[count[bucket[t]]++] = t;  // t increasing: stable
}

void lsh_hash(int *sorted, const float *qk, size_t ld, const float *rot, const LshShape *s, float *scratch) {
    int T = s->T, valid = s->win.valid, NR = s->n_hashes, cols = lsh_rotation_cols(&s->buckets), nb = lsh_bucket_count(&s->buckets);
    int rc = NR * cols;
    if (nb == 1) {  // one bucket (eval --attn chunks): every round is the positions in order
        for (int i = 0; i < NR * T; i++) sorted[i] = i;
        return;
    }
    int *bucket = (int *)scratch, *count = bucket + (size_t)NR * T;  // (NR, T), then (nb + 1)
    float *rotated = (float *)(count + nb + 1);                     // (HASH_ROWS, rc) per thread
    // rotated = qk @ rot (rot viewed as (HS, NR*cols) as HF lays it out), a block of rows at a
    // time in each thread's own buffer, whose argmax is taken while it is in cache: at two
    // million positions and 512 columns the whole product would be 4 GB written and read back
    // per head. BLAS itself is single-threaded; the blocks are split over our threads.
    int blocks = (T + HASH_ROWS - 1) / HASH_ROWS;
    #pragma omp parallel for schedule(static) if (!omp_in_parallel() && threads_get() > 1 && T >= 1024)
    for (int blk = 0; blk < blocks; blk++) {
        int t0 = blk * HASH_ROWS, t1 = imin(t0 + HASH_ROWS, T);
        float *x = rotated + (size_t)omp_get_thread_num() * HASH_ROWS * rc;
        gemm_one(&(GemmOp){0, 0, t1 - t0, rc, s->HS, 1.0f, qk + (size_t)t0 * ld, ld, rot, rc, 0.0f, x, rc});
        for (int t = t0; t < t1; t++)
            for (int r = 0; r < NR; r++)
                bucket[(size_t)r * T + t] = bucket_of(x + (size_t)(t - t0) * rc + r * cols, s);
    }
    int pad = valid > 0 && valid < T;
    if (pad)
        for (int r = 0; r < NR; r++)
            for (int t = valid; t < T; t++) bucket[(size_t)r * T + t] = nb;
    // each round's stable order, offset into the round's items
    for (int r = 0; r < NR; r++) {
        int *order = sorted + (size_t)r * T;
        lsh_sort_round(order, bucket + (size_t)r * T, T, nb + pad, count);
        for (int t = 0; t < T; t++) order[t] += r * T;
    }
}

static int rounds(const LshShape *s) { return s->plain ? 1 : s->n_hashes; }

// The item of each (round, position) and the position of each item, from the bucket order
// (items of round r are r * T + position, in sorted order).
static void index_items(Work *w, const int *sorted, const LshShape *s) {
    int N = lsh_items(s), T = s->T;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        int j = s->plain ? i : sorted[i];
        w->pos[i] = j % T;
        w->undo[j] = i;
    }
}

// Gather the head's items into attention order: q, the key scale, v, positions.
static void gather(Work *w, const int *sorted, const float *qk, const float *v, size_t ld,
                   const LshShape *s) {
    int T = s->T, HS = s->HS, NR = rounds(s), N = lsh_items(s);
    size_t qrow = (size_t)HS * sizeof(float), vrow = (size_t)HS * (w->v16 ? sizeof(uint16_t) : sizeof(float));
    int stream = streaming(w->q, N, qrow) && streaming(w->v16 ? (void *)w->v16 : (void *)w->v, N, vrow);
    index_items(w, sorted, s);
    #pragma omp parallel
    {
        uint16_t y16[LSH_MAX_HEAD];
        #pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            const float *x = qk + (size_t)t * ld, *y = v + (size_t)t * ld;
            float ks = lsh_key_scale(x, HS);
            if (w->v16) gemm_block_round_row(y16, y, HS);  // once for all rounds
            for (int r = 0; r < NR; r++) {
                int i = w->undo[r * T + t];
                w->kscale[i] = ks;
                put_row(w->q + (size_t)i * HS, x, qrow, stream);
                if (w->v16) put_row(w->v16 + (size_t)i * HS, y16, vrow, stream);
                else put_row(w->v + (size_t)i * HS, y, vrow, stream);
            }
        }
        stream_done(stream);
    }
}

// Rows in (round, position) order: row r * T + t is at index[r * T + t] (the item of that
// round and position) or, with index NULL, at r * T + t itself.
typedef struct {
    const float *rows;
    const int *index;
} Rows;

static inline const float *row_at(Rows u, int r, int t, int T, int HS) {
    size_t j = (size_t)r * T + t;
    return u.rows + (u.index ? (size_t)u.index[j] : j) * HS;
}

// Sorted rows src (N, HS) seen in position order. When they fit in cache, or the head is plain,
// src itself through the item index; otherwise copied in position order to buf (N, HS), reading
// src in order, so the passes after it read in order too.
static Rows positions_of(float *buf, const float *src, const Work *w, const LshShape *s) {
    int N = lsh_items(s), T = s->T, HS = s->HS;
    Rows u = {src, s->plain ? NULL : w->undo};
    size_t row = (size_t)HS * sizeof(float);
    int stream = streaming(buf, N, row);
    if (s->plain || !stream) return u;
    #pragma omp parallel
    {
        #pragma omp for schedule(static)
        for (int i = 0; i < N; i++)
            put_row(buf + ((size_t)(i - i % T) + w->pos[i]) * HS, src + (size_t)i * HS, row, stream);
        stream_done(stream);
    }
    u.rows = buf;
    u.index = NULL;
    return u;
}

// Round weights of position t: w_r = softmax_r(lse of (r, t)), into wr (NR).
static void round_weights(float *wr, const Work *w, int t, int T, int NR) {
    for (int r = 0; r < NR; r++) wr[r] = w->lse[w->undo[r * T + t]];
    softmax_hf(wr, wr, NR);
}

// out (row t) = sum_r wr_r u_(r, t): the rounds of position t combined.
static void combine_position(float *out, const float *wr, Rows u, int t, int T, int NR, int HS) {
    for (int d = 0; d < HS; d++) out[d] = 0.0f;
    for (int r = 0; r < NR; r++) {
        const float *ur = row_at(u, r, t, T, HS);
        for (int d = 0; d < HS; d++) out[d] += wr[r] * ur[d];
    }
}

// Unsort and combine rounds: out_t = sum_r w_r o_(r, t), with u the outputs (positions_of).
static void combine_rounds(float *out, size_t ld, Rows u, const Work *w, const LshShape *s) {
    int T = s->T, HS = s->HS, NR = rounds(s);
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float wr[MAX_ROUNDS];
        round_weights(wr, w, t, T, NR);
        combine_position(out + (size_t)t * ld, wr, u, t, T, NR, HS);
    }
}

// The sorted outputs and their logsumexps live in keep when the caller keeps them.
static void keep_views(Work *w, float *keep, const LshShape *s) {
    if (!keep) return;
    w->o = keep;
    w->lse = keep + (size_t)lsh_items(s) * s->HS;
}

void lsh_attention_forward(float *out, const int *sorted, const float *qk, const float *v,
                           size_t ld, const LshShape *s, float *scratch, float *keep) {
    Work w = work_views(scratch, s);
    ChunkAttnShape a = kernel_shape(s);
    keep_views(&w, keep, s);
    gather(&w, sorted, qk, v, ld, s);
    ChunkInputs in = {w.q, NULL, w.kscale, w.v, w.pos, w.v16};
    chunk_attention_forward(w.o, w.lse, &in, &a, w.kernel);
    combine_rounds(out, ld, positions_of(w.q, w.o, &w, s), &w, s);  // q is free once the kernel ran
}

void lsh_attention_backward(float *dqk, float *dv, float *out, const float *dout,
                            const int *sorted, const float *qk, const float *v, size_t ld,
                            const LshShape *s, float *scratch, float *kept) {
    Work w = work_views(scratch, s);
    ChunkAttnShape a = kernel_shape(s);
    int T = s->T, HS = s->HS, N = lsh_items(s), NR = rounds(s);
    CHECK(HS <= LSH_MAX_HEAD, "head size %d", HS);
    keep_views(&w, kept, s);
    gather(&w, sorted, qk, v, ld, s);
    ChunkInputs in = {w.q, NULL, w.kscale, w.v, w.pos, w.v16};
    if (!kept) chunk_attention_forward(w.o, w.lse, &in, &a, w.kernel);
    // the outputs seen in position order (a copy, if any, in dqk: free until the kernel's backward)
    Rows u = positions_of(w.dqk, w.o, &w, s);
    // forward: out = sum_r w_r o_r, w = softmax_r(lse_r), so do_r = w_r dout and
    // dlse_r = w_r (dout.o_r - sum_r' w_r' dout.o_r'); the kernel's delta_r = do_r.o_r.
    // do_r is written over o_r once position t has read its rounds' rows (u may be o itself).
    int stream = streaming(w.o, N, (size_t)HS * sizeof(float));
    #pragma omp parallel
    {
        #pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            float wr[MAX_ROUNDS], dw[MAX_ROUNDS], row[LSH_MAX_HEAD];
            round_weights(wr, &w, t, T, NR);
            if (out) combine_position(out + (size_t)t * ld, wr, u, t, T, NR, HS);
            const float *g = dout + (size_t)t * ld;
            float mean_dw = 0.0f;
            for (int r = 0; r < NR; r++) {
                const float *ur = row_at(u, r, t, T, HS);
                float dot = 0.0f;
                for (int d = 0; d < HS; d++) dot += g[d] * ur[d];
                dw[r] = dot;
                mean_dw += wr[r] * dot;
            }
            for (int r = 0; r < NR; r++) {
                int i = w.undo[r * T + t];
                for (int d = 0; d < HS; d++) row[d] = wr[r] * g[d];
                put_row(w.o + (size_t)i * HS, row, (size_t)HS * sizeof(float), stream);
                w.delta[i] = wr[r] * dw[r];
                w.dlse[i] = NR > 1 ? wr[r] * (dw[r] - mean_dw) : 0.0f;
            }
        }
        stream_done(stream);
    }
    size_t nh = (size_t)N * HS;
    zero_floats(w.dqk, 2 * nh);
    // the kernel also carries the keys' gradient through their length normalisation into dqk
    ChunkGrads g = {w.dqk, NULL, w.dv};
    chunk_attention_backward(&g, &(ChunkOutGrads){w.o, w.dlse, w.delta, w.lse}, &in, &a, w.kernel);
    // to positions, summing the rounds; this overwrites, so dqk and dv may be qk and v (the
    // gathered q and v are free now, and so are the outputs' gradients: bf16 values leave too
    // little room for a copy)
    Rows uq = positions_of(w.q, w.dqk, &w, s), uv = positions_of(w.v16 ? w.o : w.v, w.dv, &w, s);
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *gx = dqk + (size_t)t * ld, *gv = dv + (size_t)t * ld;
        for (int d = 0; d < HS; d++) gx[d] = gv[d] = 0.0f;
        for (int r = 0; r < NR; r++) {
            const float *xr = row_at(uq, r, t, T, HS), *vr = row_at(uv, r, t, T, HS);
            for (int d = 0; d < HS; d++) {
                gx[d] += xr[d];
                gv[d] += vr[d];
            }
        }
    }
}

// ---- cached decoding --------------------------------------------------------

// HF _expand_to_indices_in_relevant_chunk: the chunks around a sorted slot.
static int lsh_window(const LshShape *s) { return s->win.chunk * (s->win.before + s->win.after + 1); }

size_t lsh_decode_scratch_floats(const LshShape *s, int T) {
    size_t n = (size_t)imax(T, s->n_hashes * lsh_window(s));
    return 2 * n + (size_t)s->n_hashes * (s->HS + 1);
}

void lsh_cache_hash(LshHeadCache *c, int L, const float *rot, const LshShape *s, int *count) {
    int NR = s->n_hashes, b[MAX_ROUNDS];
    for (int t = 0; t < L; t++) {
        lsh_buckets_of(b, c->key + (size_t)t * s->HS, rot, s);
        for (int r = 0; r < NR; r++) c->bucket[(size_t)r * c->T + t] = b[r];
    }
    for (int r = 0; r < NR; r++)
        lsh_sort_round(c->order + (size_t)r * c->T, c->bucket + (size_t)r * c->T, L, lsh_bucket_count(&s->buckets), count);
}

// Score of query q against cached position p as a shared-QK key (length-normalised);
// the position itself gets the self mask.
static float cached_score(const float *q, const LshHeadCache *c, int p, int self, int HS) {
    if (p == self) return ATTN_SELF_MASK;
    const float *k = c->key + (size_t)p * HS;
    float rn = c->key_scale[p], acc = 0.0f;
    for (int e = 0; e < HS; e++) acc += q[e] * (k[e] * rn);
    return acc;
}

void lsh_decode(float *out, LshHeadCache *c, int t, int hashed, const float *rot, const LshShape *s,
                float *scratch) {
    int HS = s->HS, NR = s->n_hashes, CH = s->win.chunk, W = lsh_window(s), L = t + 1;
    size_t n = (size_t)imax(c->T, NR * W);
    float *scores = scratch, *round_out = scratch + 2 * n, *lse = round_out + (size_t)NR * HS;
    int *pos = (int *)(scratch + n);
    const float *q = c->key + (size_t)t * HS;  // shared QK: the query is the position's own qk
    if (!hashed) {  // plain: every position so far
        for (int j = 0; j <= t; j++) {
            scores[j] = cached_score(q, c, j, t, HS);
            pos[j] = j;
        }
        attend_one(out, scores, pos, L, c->val, HS);
        return;
    }
    int b[MAX_ROUNDS];
    lsh_buckets_of(b, q, rot, s);
    for (int r = 0; r < NR; r++) {
        int *bucket = c->bucket + (size_t)r * c->T, *order = c->order + (size_t)r * c->T;
        bucket[t] = b[r];
        // the first sorted slot whose bucket is larger: HF's stable argsort puts the newest
        // position last in its bucket
        int lo = 0, hi = t;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (bucket[order[mid]] <= b[r]) lo = mid + 1;
            else hi = mid;
        }
        memmove(order + lo + 1, order + lo, (size_t)(t - lo) * sizeof(int));
        order[lo] = t;
        // the window of chunks around slot lo, wrapping modulo the length as HF does; all
        // positions are past, so no causal mask
        int start = (lo / CH - s->win.before) * CH;
        float *sc = scores + (size_t)r * W;
        int *pr = pos + (size_t)r * W;
        for (int j = 0; j < W; j++) {
            pr[j] = order[((start + j) % L + L) % L];
            sc[j] = cached_score(q, c, pr[j], t, HS);
        }
        lse[r] = attend_one(round_out + (size_t)r * HS, sc, pr, W, c->val, HS);
    }
    // the rounds combined by the same softmax, over their logsumexps (one round: weight 1)
    int *rounds = pos;  // the window positions are no longer needed
    for (int r = 0; r < NR; r++) rounds[r] = r;
    attend_one(out, lse, rounds, NR, round_out, HS);
}
