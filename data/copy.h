// copy.h: the paper's duplication task (Reformer section 5): sequences `0 w 0 w`,
// w a random string of symbols 1 .. V-1 of length T/2 - 1. The second w is fully
// predictable from the first, so accuracy on it measures whether attention finds
// the matching position T/2 back. Generated on the fly: no download.
#ifndef REFORMER_COPY_H
#define REFORMER_COPY_H

#include "../core/rng.h"

// tokens (B, T) from rng; T even, vocab >= 3.
void copy_batch(int *tokens, int B, int T, int vocab, Rng *rng);
// First label position of the copied half: labels at positions >= this are scored
// for accuracy (the symbols of the second w).
int copy_scored_from(int T);

#endif
