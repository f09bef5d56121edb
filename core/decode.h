// decode.h: cached incremental decoding for sampling, with the semantics of HuggingFace's
// `past_buckets_states` (ReformerModelWithLMHead with use_cache=True):
//
//   Decoder d;
//   decoder_init(&d, &m, T, NULL);           // m: a causal model; T: positions
//   decoder_prefill(&d, prompt, n, logits);  // one forward pass over the prompt
//   for (...) decoder_step(&d, next, logits);  // O(window) attention per new token
//   decoder_free(&d);
//
// Per layer the cache keeps each position's projections (LSH: qk and v; local: k and v;
// HF keeps the LayerNorm output and re-projects, which is the same arithmetic) and, for
// LSH layers, each position's bucket per round plus the positions sorted by (bucket,
// position), kept sorted by insertion.
//   prompt:  the model's own forward pass (LSH chunked, or plain when n <= chunk); LSH
//            layers hash every prompt position when n >= chunk (HF caches buckets then).
//   LSH, buckets cached: the new position is hashed, sorted in after every cached
//            position of its bucket (HF's stable argsort puts the newest last), and in
//            each round attends the CH * (before + after + 1) sorted positions of the
//            chunk window around it, wrapping modulo the length as HF does; no causal
//            mask (all are past), the self mask on its own position, rounds combined by
//            softmax over their logsumexps.
//   LSH, no buckets yet (fewer than CH positions): plain attention over every position
//            with the self mask; when the length reaches CH all positions are hashed.
//   local:   keys from ((t / CH) - before) * CH (a negative start counts from the end, as
//            Python slicing does in HF's _retrieve_relevant_hidden_states) through t.
//   full:    plain attention over every position with the self mask.
// A prompt whose length no forward pass accepts (not <= or a multiple of each chunk
// length) runs its longest accepted prefix through the forward pass and the rest token
// by token; HF instead pads that prompt and masks the padding.
#ifndef REFORMER_DECODE_H
#define REFORMER_DECODE_H

#include "model.h"

typedef struct {
    Model *m;
    int T;                       // positions the cache holds
    int len;                     // positions decoded so far
    float *key[MAX_LAYERS];      // (NH, T, HS) LSH/full: qk as projected; local: key
    float *key_scale[MAX_LAYERS];  // (NH, T) LSH/full: the factor that makes qk a key
    float *val[MAX_LAYERS];      // (NH, T, HS)
    int *bucket[MAX_LAYERS];     // (NH, NR, T) LSH: bucket of each position per round
    int *order[MAX_LAYERS];      // (NH, NR, T) LSH: positions sorted by (bucket, position)
    int hashed[MAX_LAYERS];      // LSH: buckets exist (HF: past_buckets is not None)
    float *rot[MAX_LAYERS];      // LSH: the rotations of every step (those of step 0)
    float *x1, *x2, *h, *att;    // (C) the new position's halves, LayerNorm output, F(x2)
    float *q, *o;                // (NH, HS) queries and attention outputs
    int threads;                 // threads the per-thread scratch was sized for (threads_get at init)
    int team;                    // threads a step uses now: 1 or threads (decoder_step's probes)
    double probe_s[2];           // seconds of the probe tokens with 1 thread and with all
    size_t scratch_len;          // floats of one head's decoding scratch
    float *scratch;              // (threads, scratch_len)
    // the prompt pass's own buffers (the model's belong to its training and evaluation)
    ModelSpec spec;              // one sequence of up to T tokens, kernels split over threads
    Activations act;
    Workspace work;
} Decoder;

// Decoding runs without dropout, hashing with the rotations of step 0: the given ones
// (per layer, as ForwardArgs.rotations; may be NULL) or those drawn for step 0.
void decoder_init(Decoder *d, Model *m, int T, const float *const *rotations);
void decoder_free(Decoder *d);
// Runs the prompt tokens (n >= 1); logits (V) predict the token after it.
void decoder_prefill(Decoder *d, const int *tokens, int n, float *logits);
// Appends token at position d->len; logits (V) predict the next one.
void decoder_step(Decoder *d, int token, float *logits);
// The longest prefix of n tokens that a forward pass accepts.
int decoder_forward_len(const ReformerConfig *c, int n);

#endif
