#!/usr/bin/env python3
"""On paper: the communication of one data-parallel step against its compute, on a cluster.

Per step every rank sends and receives (N-1)/N of the gradient as doubles (the reduce-scatter:
gradients are summed in double so the sum does not depend on N) and (N-1)/N of the parameters
as floats (the all-gather of the updated slices): 12 (N-1)/N bytes per parameter, a ring
all-reduce of float32 (2 (N-1)/N x 4 bytes) times 1.5. With a per-message latency a, the ring's
2 (N-1) steps add 2 (N-1) a. Collectives do not overlap the backward pass, so their time adds
to the step: efficiency = step / (step + comm).

  scripts/comm_table.py            the BENCH.md table (markdown)
"""
MODELS = {  # parameters; step seconds of one rank holding one 65,536-token sequence, measured
    "B6": (4553472, 65536 / 1987.3, "Intel Xeon VM, 2 threads a rank (bench-results/mpi-xeon16-weak-65536-a.jsonl)"),
    "P12": (149182722, 444.0, "2-core AMD EPYC VM, 2 threads (BENCH.md, P12 row)"),
}
LINKS = {"10 Gbit/s": 10e9 / 8, "100 Gbit/s": 100e9 / 8}
LATENCY = 20e-6  # seconds per message, a typical TCP or RoCE figure
RANKS = [2, 8, 32, 128, 256]

print("| model | params | step s (one sequence a rank) | link | " + " | ".join(f"N={n}" for n in RANKS) + " |")
print("|---|---|---|---|" + "---|" * len(RANKS))
for name, (params, step, _) in MODELS.items():
    for link, bw in LINKS.items():
        cells = []
        for n in RANKS:
            comm = 12 * params * (n - 1) / n / bw + 2 * (n - 1) * LATENCY
            cells.append(f"{comm:.2f} s ({100 * step / (step + comm):.1f}%)")
        print(f"| {name} | {params / 1e6:.1f}M | {step:.0f} | {link} | " + " | ".join(cells) + " |")
print()
print("Where communication stops hiding: the tokens a rank must process per step for the collectives")
print("to stay under 10% of the step (a rank's tokens/s taken as constant), at N = 256:")
print()
for name, (params, step, _) in MODELS.items():
    rate = 65536 / step
    for link, bw in LINKS.items():
        comm = 12 * params * 255 / 256 / bw + 2 * 255 * LATENCY
        print(f"- {name}, {link}: {comm * 9 * rate:,.0f} tokens per rank per step ({comm:.2f} s of collectives)")
print()
for name, (_, _, where) in MODELS.items():
    print(f"- {name} step time: {where}")
