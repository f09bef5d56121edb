// gemm.h: the one door for matrix products. A kernel names the product it wants (shapes,
// transposes, alpha and beta); this module picks the backend and the precision:
//   - fp32: OpenBLAS sgemm, split over our own OpenMP threads in tiles (one thread pool, and
//     results fixed by the shape and the thread count);
//   - bf16 (a build with oneDNN, `make` finds libdnnl-dev): the operands rounded to bfloat16
//     (nearest even), the products accumulated and written in fp32 by oneDNN's matmul, which
//     runs AMX or AVX512-BF16 kernels where the CPU has them. What is summed over a sequence
//     (LayerNorm, softmax, the loss, optimizer state) stays fp32 in the callers.
// gemm_block (the attention kernel's products of blocks of up to 64 rows, on the calling thread)
// runs bf16 on our own kernels (gemm_block.c; a oneDNN call costs more than such a block): AMX
// tiles where the CPU has them, AVX512-BF16 elsewhere. gemm_one is fp32 in either precision (LSH
// hashing: an argmax that rounding would move).
#ifndef REFORMER_GEMM_H
#define REFORMER_GEMM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1 } Precision;
// Their names in configs and on the command line, indexed by the enum (NULL-terminated).
extern const char *const precision_names[];

// The precision of gemm_team for this process (like threads_set: set once at the start).
// Returns 0, or -1 with one line in err when this build or this CPU cannot run it.
int gemm_set_precision(Precision p, char *err, size_t cap);
Precision gemm_precision(void);
// The backend a precision runs on in this build: "openblas" or "onednn".
const char *gemm_backend(Precision p);

// C (M, N; rows ldc apart) = alpha * op(A) op(B) + beta * C, row-major. op(A) (M, K) is A as
// stored with rows lda apart, or with ta its transpose (A stored (K, M)); op(B) (K, N) likewise
// (with tb, B stored (N, K)). beta 0 does not read C.
typedef struct {
    int ta, tb;
    int M, N, K;
    float alpha;
    const float *A;
    size_t lda;
    const float *B;
    size_t ldb;
    float beta;
    float *C;
    size_t ldc;
    const float *bias;  // gemm_team only: (N) added to every row of C (C = alpha op(A) op(B) + bias + beta C)
    // gemm_team in bf16 only: A or B already rounded to bf16 (lda, ldb in its elements), read
    // instead of A or B: an operand that several products read is rounded once, not per product
    const uint16_t *A16, *B16;
} GemmOp;

// f rounded to the nearest bfloat16, ties to even (NaN stays NaN): the rounding gemm_team's bf16
// products apply to their fp32 operands.
static inline uint16_t bf16_round(float f) {
    union {
        float f;
        uint32_t u;
    } x = {f};
    if ((x.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x.u >> 16) | 0x40);
    return (uint16_t)((x.u + 0x7fffu + ((x.u >> 16) & 1)) >> 16);
}
// dst (rows x cols, dense) = src (rows ld apart) rounded to bf16, over the team when split.
void gemm_round_bf16(uint16_t *dst, const float *src, size_t rows, int cols, size_t ld, int split);

// On the calling thread, fp32.
void gemm_one(const GemmOp *op);
// On the calling thread, in the process's precision (blocks: M and N up to a few hundred).
// B16 (B already rounded, ldb in its elements) is read where gemm_block_rounds().
void gemm_block(const GemmOp *op);
// 1 when gemm_block rounds its operands to bf16 (bf16 precision on the avx512bf16 or amx
// kernel; sgemm blocks take fp32 as it is).
int gemm_block_rounds(void);
// dst (n) = src (n) rounded to bf16 exactly as gemm_block rounds an operand while packing it
// (vcvtneps2bf16: nearest even, subnormal inputs to zero), so a row held so gives the same
// products. Only where gemm_block_rounds().
void gemm_block_round_row(uint16_t *dst, const float *src, int n);
// What gemm_block runs in precision p: "amx" or "avx512bf16" (bf16: by default AMX where the CPU
// has it, else AVX512-BF16) or "openblas" (fp32 sgemm).
const char *gemm_block_backend(Precision p);
// Sets what gemm_block runs in bf16: name NULL picks by the CPU, "openblas", "avx512bf16" or
// "amx" forces one (the environment's REFORMER_BLOCKS, read by gemm_set_precision: for measuring
// them on one machine). Returns 0, or -1 with one line in err (amx where the CPU has none).
int gemm_block_choose(const char *name, char *err, size_t cap);
// Over the threads (split: 1 to tile the product over the team, 0 to run it on the calling
// thread, as inside a parallel region), in the process's precision. A bias is written into C
// before an fp32 product (beta C + bias, then the product with beta 1: the bits fp32 always had)
// and added in oneDNN's epilogue in bf16 (one pass over C fewer).
void gemm_team(const GemmOp *op, int split);

// y (M) = alpha * A (M, N; rows lda apart) x (N) + bias (M, or NULL) + beta * y, rows split over
// the threads when split (cached decoding: one position, where a product would pack the whole
// weight). fp32.
void gemv_team(int M, int N, float alpha, const float *A, size_t lda, const float *x, const float *bias, float beta,
               float *y, int split);

#endif
