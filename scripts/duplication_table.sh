#!/usr/bin/env bash
# The paper's Table 2 (section 5, the duplication task 0 w 0 w, vocabulary 128) with our
# binary: trains four one-layer models of configs/duplication.json (full attention, LSH with
# 4, 2 and 1 hashes), evaluates each under full attention and LSH with 8, 4, 2 and 1 hashes
# (`reformer eval --attn / --hashes`) and prints our table beside the paper's.
#
#   scripts/duplication_table.sh [--steps N] [--seq L] [--threads T] [--jobs J] [--out DIR]
#
# --seq shortens the task (|w| = L/2 - 1; the position table is resized to L), --steps
# shortens training (the paper trained 150K steps); the table says what was run.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=150000 seq=1024 threads=2 jobs=1 out=duplication bin=./reformer
while [ $# -gt 0 ]; do
    case "$1" in
        --steps) steps=$2; shift 2 ;;
        --seq) seq=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        *) echo "usage: $0 [--steps N] [--seq L] [--threads T] [--jobs J] [--out DIR] [--bin PATH]" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
# the config at this length: the position table holds exactly L positions
sed -e "s/\"seq_len\": 1024/\"seq_len\": $seq/" -e "s/\"axial_shape\": \[1, 1024\]/\"axial_shape\": [1, $seq]/" \
    configs/duplication.json > "$out/base.json"
rows="full lsh4 lsh2 lsh1"
train_row() {
    local row=$1 cfg="$out/$1.json"
    case $row in
        full) sed 's/"attn_layers": \["lsh"\]/"attn_layers": ["full"]/' "$out/base.json" > "$cfg" ;;
        lsh*) sed "s/\"n_hashes\": 4/\"n_hashes\": ${row#lsh}/" "$out/base.json" > "$cfg" ;;
    esac
    "$bin" train "$cfg" --steps "$steps" --threads "$threads" --out "$out/$row" > "$out/$row.log" 2>&1
}
running=0
for row in $rows; do
    train_row "$row" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
accuracy() {  # copied-half accuracy of a checkpoint under the given eval flags, in percent
    "$bin" eval --ckpt "$1" --threads "$threads" --json "${@:2}" | sed 's/.*"accuracy": \([0-9.]*\).*/\1/' |
        awk '{printf "%.1f%%", 100 * $1}'
}
paper_full="100% | 94.8% | 92.5% | 76.9% | 52.5%"
paper_lsh4="0.8% | 100% | 99.9% | 99.4% | 91.9%"
paper_lsh2="0.8% | 100% | 99.9% | 98.1% | 86.8%"
paper_lsh1="0.8% | 99.9% | 99.6% | 94.8% | 77.9%"
{
    echo "Duplication task, length $seq (|w| = $((seq / 2 - 1))), $steps training steps of batch 8; accuracy on the copied half"
    echo "(chance 0.8%); ours, and the paper's Table 2 (length 1024, 150K steps) in parentheses."
    echo
    echo "| train \\ eval | full | LSH-8 | LSH-4 | LSH-2 | LSH-1 |"
    echo "|---|---|---|---|---|---|"
    for row in $rows; do
        ckpt="$out/$row/last.ckpt"
        cells="$(accuracy "$ckpt" --attn full)"
        for h in 8 4 2 1; do cells="$cells | $(accuracy "$ckpt" --attn lsh --hashes $h)"; done
        paper_var="paper_$row"
        name=$([ "$row" = full ] && echo full || echo "LSH-${row#lsh}")
        echo "| $name | $cells |"
        echo "| (paper) | ${!paper_var} |"
    done
} | tee "$out/table.md"
