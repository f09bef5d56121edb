#!/usr/bin/env python3
"""Where a step's time goes, as a Markdown table, from `reformer bench --json` rows.

One row per bench row that has "lost" (HuggingFace rows and older rows are skipped): tokens/s,
the share of the step in each part, the dense layers' sgemm rate against the same run's 2048^3
reference, MFU, and how much of the step is lost beyond the FLOPs' time at that reference.
Shares are of the step's wall time and sum to 1: dense sgemm (dense_gemm_share), the attention
kernel with hashing (attn_core less the row moves), and the parts that run no counted FLOPs,
whose whole time is their "lost" value (LayerNorm, activation, other dense passes, row moves,
other). Shares hold up when the VM's speed drifts; MFU and "lost" for the sgemm and attention
parts move with the reference, which on a shared VM swings within one call.

  scripts/lost_table.py bench-results/xeon16-run18-moves.jsonl --tag r16
"""
import argparse, json

p = argparse.ArgumentParser()
p.add_argument("files", nargs="+")
p.add_argument("--tag", help="only rows with this tag (scripts/bench_alternate.sh)")
a = p.parse_args()

cols = ["threads", "L", "kept", "tokens/s", "dense sgemm", "attention kernel + hashing", "row moves",
        "LayerNorm", "GELU", "other dense passes", "other", "dense sgemm rate / reference", "MFU"]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for name in a.files:
    for raw in open(name):
        r = json.loads(raw)
        if "lost" not in r or (a.tag and r.get("tag") != a.tag):
            continue
        lo, ts = r["lost"], r["time_share"]
        pct = lambda x: "%.1f%%" % (100 * x)
        row = [r["threads"], r["seq"], r.get("kept_layers", 0), "%.0f" % r["tokens_per_s"],
               pct(r["dense_gemm_share"]), pct(ts["attn_core"] - lo["attn_moves"]), pct(lo["attn_moves"]),
               pct(lo["layernorm"]), pct(lo["activation"]), pct(lo["dense_rest"]), pct(lo["other"]),
               "%.0f / %.0f GFLOP/s" % (r["dense_gemm_gflops"], r["sgemm_gflops"]), pct(r["mfu"])]
        print("| " + " | ".join(str(x) for x in row) + " |")
