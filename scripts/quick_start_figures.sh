#!/usr/bin/env bash
# The figures README's quick start quotes: trains configs/copy.json (one LSH layer) and the same
# model with a local-attention layer (chunk 16, one chunk back: it cannot see 31 positions
# back), evaluates the LSH model on the test split as trained, under local attention and with
# 1 and 2 hashes, and draws both runs' curves into docs/copy-curves.svg.
#
#   scripts/quick_start_figures.sh [--threads T] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 out=quick-start
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--threads T] [--out DIR]" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
sed -e 's/"attn_layers": \["lsh"\]/"attn_layers": ["local"], "local_chunk": 16, "local_chunks_before": 1/' \
    configs/copy.json > "$out/local-only.json"
for run in lsh local-only; do
    cfg=configs/copy.json
    [ "$run" = local-only ] && cfg="$out/local-only.json"
    start=$(date +%s)
    ./reformer train "$cfg" --threads "$threads" --out "$out/$run" > "$out/$run.log" 2>&1
    echo "$run: $(( $(date +%s) - start )) s"
    # validations as step:accuracy%, and the range of the logged tokens/s
    awk -F'[,:}]' '/valid_accuracy/ { for (i = 1; i < NF; i++) { if ($i ~ /"step"/) s = $(i+1);
                                           if ($i ~ /"valid_accuracy"/) a = $(i+1) }
                                       printf " %d:%.2f%%", s, 100 * a }
                   /tokens_per_s/ { for (i = 1; i < NF; i++) if ($i ~ /"tokens_per_s"/) { t = $(i+1) + 0
                                       if (!lo || t < lo) lo = t; if (t > hi) hi = t } }
                   END { printf "\n  tokens/s %d to %d\n", lo, hi }' "$out/$run/metrics.jsonl"
done
ckpt="$out/lsh/best.ckpt"
echo "eval --split test:            $(./reformer eval --ckpt "$ckpt" --split test --json)"
echo "eval --split test --attn chunks: $(./reformer eval --ckpt "$ckpt" --split test --attn chunks --json)"
for h in 1 2; do
    echo "eval --split test --hashes $h:  $(./reformer eval --ckpt "$ckpt" --split test --hashes $h --json)"
done
./reformer plot "lsh=$out/lsh" "local-only=$out/local-only" --out docs/copy-curves.svg
