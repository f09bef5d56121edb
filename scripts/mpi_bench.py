#!/usr/bin/env python3
"""Data-parallel training throughput of `reformer train` (a build with make MPI=1).

Trains B6 (configs/b6.json) on the copy task's synthetic tokens at one sequence length and
global batch, once per RANKSxTHREADS layout given, and prints one JSON line each: median
tokens/s over the steps after the first, and what the run reports of its peak memory per
process and of the share of step time in collectives.

  scripts/mpi_bench.py --seq 16384 --batch 2 --steps 6 1x2 2x1
  scripts/mpi_bench.py --seq 65536 --batch 8 --steps 4 1x2 2x2 4x2 8x2

One rank runs without mpirun; more run as `mpirun -np R --map-by slot:PE=T --bind-to core`,
each rank with T threads, so ranks x threads never share a core. MPIRUN names the launcher
(default mpirun), MPIRUN_FLAGS adds options (e.g. --allow-run-as-root). The optimizer state is
sharded unless --whole. --per-rank B gives each layout a global batch of R x B (weak scaling).
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile

p = argparse.ArgumentParser()
p.add_argument("layouts", nargs="+", help="RANKSxTHREADS, e.g. 2x1")
p.add_argument("--seq", type=int, default=16384)
p.add_argument("--batch", type=int, default=2, help="global batch")
p.add_argument("--per-rank", type=int, default=0, help="weak scaling: a global batch of R x this")
p.add_argument("--steps", type=int, default=6)
p.add_argument("--config", default="configs/b6.json")
p.add_argument("--optimizer", default="adam")
p.add_argument("--whole", action="store_true", help="every rank keeps the whole optimizer state")
p.add_argument("--bin", default="./reformer")
a = p.parse_args()

cfg = json.load(open(a.config))
side = 1 << ((a.seq.bit_length() - 1) // 2)
cfg["model"]["axial_shape"] = [side, a.seq // side]
cfg["data"] = {"kind": "copy", "seq_len": a.seq}
work = tempfile.mkdtemp(prefix="mpi-bench-")
path = os.path.join(work, "config.json")

for layout in a.layouts:
    ranks, threads = (int(x) for x in layout.split("x"))
    batch = ranks * a.per_rank if a.per_rank else a.batch
    cfg["train"] = {"batch": batch, "steps": a.steps, "eval_every": 0, "save_every": 0, "log_every": 1,
                    "optimizer": a.optimizer, "shard_optimizer": not a.whole}
    json.dump(cfg, open(path, "w"))
    out = os.path.join(work, layout)
    cmd = [a.bin, "train", path, "--out", out, "--threads", str(threads)]
    if ranks > 1:
        cmd = [os.environ.get("MPIRUN", "mpirun"), *os.environ.get("MPIRUN_FLAGS", "").split(), "-np", str(ranks), "--map-by",
               f"slot:PE={threads}", "--bind-to", "core"] + cmd
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"{' '.join(cmd)}: exit {run.returncode}\n{run.stderr[-2000:]}")
    rates = [json.loads(l)["tokens_per_s"] for l in open(os.path.join(out, "metrics.jsonl"))][1:]
    mem = re.search(r"peak memory (\d+) MB", run.stderr)
    comm = re.search(r"collectives took ([\d.]+)%", run.stderr)
    print(json.dumps({"seq": a.seq, "batch": batch, "ranks": ranks, "threads": threads,
                      "tokens_per_s": round(statistics.median(rates), 1),
                      "peak_mb_per_process": int(mem.group(1)) if mem else None,
                      "collectives_share": float(comm.group(1)) / 100 if comm else 0.0,
                      "sharded": ranks > 1 and not a.whole, "optimizer": a.optimizer}), flush=True)
shutil.rmtree(work)
