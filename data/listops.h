// listops.h: the Long Range Arena's ListOps files (basic_{train,val,test}.tsv, as LRA writes them
// and scripts/listops.py generates them): a header "Source<TAB>Target", then one expression a line
// and its value 0-9. Tokens are read as LRA's reader reads them, the parentheses dropped, one id
// each: 0 padding, digits 0-9 as 1-10, [MIN 11, [MAX 12, [MED 13, [SM 14, ] 15.
#ifndef REFORMER_LISTOPS_H
#define REFORMER_LISTOPS_H

#include <stddef.h>

enum { LISTOPS_PAD = 0, LISTOPS_VOCAB = 16, LISTOPS_CLASSES = 10 };

typedef struct {
    int *ids;       // every sequence's ids, one after another
    size_t *start;  // (count) where sequence i starts in ids
    int *len;       // (count) its tokens
    int *label;     // (count) its value, 0-9
    size_t count;
} ListopsSet;

// Reads path; a sequence longer than max_len tokens is refused. Returns 0, or -1 with one line in
// err naming the file, the line and what is wrong (no header, a label out of range, a token
// outside the vocabulary, an empty or over-long sequence).
int listops_read(ListopsSet *s, const char *path, int max_len, char *err, size_t cap);
void listops_free(ListopsSet *s);

// The value of the expression ids (n), or -1 when it is not a well-formed expression.
int listops_value(const int *ids, int n);

#endif
