// mlm.h: BERT's masking for masked-LM training and evaluation (Devlin et al. 2019, as
// HuggingFace's DataCollatorForLanguageModeling draws it): each real position is chosen with
// probability `rate`; a chosen position's label is its token, and its input becomes the mask id
// (80%), a random token (10%) or stays (10%). Positions not chosen have label -1 (no loss).
// The draws are a pure function of (stream, position): a sequence masks the same way on any
// rank, thread or batch.
#ifndef REFORMER_MLM_H
#define REFORMER_MLM_H

#include <stdint.h>

// tokens (n) are masked in place and labels (n) written; positions [valid, n) are padding
// (never chosen). rate 0 masks nothing and labels every real position with its own token (the
// loss HF's ReformerForMaskedLM(input_ids, labels=input_ids) reports).
void mlm_mask(int *tokens, int *labels, int n, int valid, float rate, int mask_id, int vocab, uint64_t stream);

#endif
