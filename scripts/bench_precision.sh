#!/usr/bin/env bash
# B6 at one length, ours in fp32 and bf16 and HuggingFace's Reformer in fp32 and under PyTorch's
# bf16 autocast, at each thread count, every row one JSON line (ours: `reformer bench --json`,
# tagged; HF: scripts/hf_reformer_bench.py). The figures of BENCH.md's "bf16 products" section.
#
#   scripts/bench_precision.sh L STEPS THREADS...      e.g. scripts/bench_precision.sh 65536 2 2 16
#   REFORMER=path/to/reformer HF_BENCH=path/to/hf_reformer_bench.py (defaults: ./reformer, scripts/)
set -uo pipefail
L=$1 steps=$2
shift 2
reformer=${REFORMER:-./reformer}
hf=${HF_BENCH:-$(dirname "$0")/hf_reformer_bench.py}
for t in "$@"; do
    for p in fp32 bf16; do
        OMP_NUM_THREADS=$t "$reformer" bench --seq "$L" --threads "$t" --steps "$steps" --precision $p --json |
            sed "s/^{/{\"tag\": \"ours-$p\", /"
    done
    for mode in train train-bf16; do
        OMP_NUM_THREADS=$t python3 "$hf" driver "[[\"hf-reformer\",$L,$t,\"cpu\",6,256,1024,4,2,1,\"$mode\"]]" 280
    done
done
