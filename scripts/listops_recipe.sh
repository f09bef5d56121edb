#!/usr/bin/env bash
# The ListOps recipe of README's Results, end to end: configs/listops.json (2,000 steps), then
# configs/listops-more.json twice (2,000 steps each from the stage before, the third with its
# own data order), and the last checkpoint scored on the test split. About 2 h 20 min on 2 cores.
#
#   scripts/listops_recipe.sh DATA_DIR OUT_DIR [SEED]      e.g. scripts/listops_recipe.sh data/listops run/listops
#   REFORMER=path/to/reformer (default ./reformer)
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 DATA_DIR OUT_DIR [SEED]" >&2
    exit 2
fi
data=$1 out=$2 seed=${3:-1}
reformer=${REFORMER:-./reformer}
configs=$(dirname "$0")/../configs
"$reformer" train "$configs/listops.json" --data "$data" --out "$out/stage1" --seed "$seed"
"$reformer" train "$configs/listops-more.json" --data "$data" --ckpt "$out/stage1/last.ckpt" --out "$out/stage2" --seed "$seed"
"$reformer" train "$configs/listops-more.json" --data "$data" --ckpt "$out/stage2/last.ckpt" --out "$out/stage3" --seed $((seed + 2))
"$reformer" eval --ckpt "$out/stage3/last.ckpt" --data "$data/basic_test.tsv" --json
