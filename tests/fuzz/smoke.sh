#!/usr/bin/env bash
# make fuzz-smoke: each libFuzzer harness for SECONDS (default 20) from its seed corpus.
# New inputs go to a scratch directory, never into the repository; a crash, a sanitizer
# report, a leak, a time-out (10 s on one input) or an allocation over 2 GB fails the run
# and leaves the input that did it in build-fuzz/crashes/.
set -u
seconds=${1:-20}
cd "$(dirname "$0")/../.."
mkdir -p build-fuzz/crashes
passed=0 failed=0
for bin in build-fuzz/fuzz_*; do
    name=${bin#build-fuzz/fuzz_}
    work=$(mktemp -d)
    if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -artifact_prefix=build-fuzz/crashes/"$name"- "$work" tests/fuzz/corpus/"$name" >"$work.log" 2>&1; then
        echo "ok   fuzz $name ($(grep -o 'Done [0-9]* runs' "$work.log" | head -1))"
        passed=$((passed + 1))
    else
        echo "FAIL fuzz $name"
        grep -A30 -m1 -E 'ERROR|runtime error|SUMMARY|out-of-memory|timeout' "$work.log" | head -40
        failed=$((failed + 1))
    fi
    rm -rf "$work" "$work.log"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
