#!/usr/bin/env python3
"""Joins the metrics.jsonl of runs that continue one another (a fine-tuning stage started with
--ckpt counts its steps from 1 again) into one, each stage's steps, tokens and seconds shifted by
the ones before it, so `reformer plot` draws them as one curve:

    scripts/join_runs.py listops listops2 listops3 > listops-3-stages.jsonl
    ./reformer plot "3 stages=listops-3-stages.jsonl" --out curves.svg
"""
import json
import os
import sys

if len(sys.argv) < 2:
    sys.exit("usage: join_runs.py RUN_DIR_OR_JSONL...")
shift = {"step": 0, "tokens": 0, "elapsed_s": 0.0}
for run in sys.argv[1:]:
    path = os.path.join(run, "metrics.jsonl") if os.path.isdir(run) else run
    last = dict(shift)
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            for key, base in shift.items():
                if key in row:
                    row[key] += base
                    last[key] = row[key]
            print(json.dumps(row))
    shift = last
