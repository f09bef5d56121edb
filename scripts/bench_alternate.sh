#!/usr/bin/env bash
# Runs several `reformer bench --json` command lines in turn, ROUNDS times over, and prints
# every row with a "tag" key in front: on a machine whose speed drifts (a VM whose neighbours
# come and go), settings or builds are only comparable when they alternate within one run of this script.
#
#   scripts/bench_alternate.sh ROUNDS TAG 'COMMAND' [TAG 'COMMAND' ...]
#   scripts/bench_alternate.sh 2 recompute './reformer bench --seq 4096 --threads 2 --json' \
#                                keep './reformer bench --seq 4096 --threads 2 --json --memory-mb 100000'
set -euo pipefail
if [ $# -lt 3 ] || [ $(( ($# - 1) % 2 )) -ne 0 ]; then
    echo "usage: $0 ROUNDS TAG 'COMMAND' [TAG 'COMMAND' ...]" >&2
    exit 2
fi
rounds=$1
shift
for _ in $(seq "$rounds"); do
    args=("$@")
    for ((i = 0; i < ${#args[@]}; i += 2)); do
        tag=${args[i]} cmd=${args[i + 1]}
        bash -c "$cmd" | while IFS= read -r row; do
            case $row in
                "{"*) echo "{\"tag\": \"$tag\", ${row#\{}" ;;
            esac
        done
    done
done
