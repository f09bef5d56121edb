#!/usr/bin/env python3
"""Tokens/s against sequence length, as SVG, from benchmark JSON lines.

Reads rows of `reformer bench --json` (keys seq, attn, mode, tokens_per_s) and of
scripts/hf_reformer_bench.py (keys impl, L, mode, tokens_per_s) from the files given, and
draws one line per implementation: ours with LSH attention, ours with full attention, and
HuggingFace's Reformer. Both axes logarithmic. Rows with a "tag" (scripts/bench_alternate.sh)
are skipped.

  scripts/plot_lengths.py bench-results/lengths-*.jsonl --out docs/tokens-per-second.svg
"""
import argparse, json, math

p = argparse.ArgumentParser()
p.add_argument("files", nargs="+")
p.add_argument("--out", required=True)
p.add_argument("--title", default="B6 train step, 2 threads: tokens/s against sequence length")
a = p.parse_args()

lines = {}
for name in a.files:
    for raw in open(name):
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        r = json.loads(raw)
        # rows tagged by scripts/bench_alternate.sh compare settings at one length: not sweep points
        if "tokens_per_s" not in r or r.get("mode", "train") != "train" or "tag" in r:
            continue
        if "seq" in r:
            key = "ours, LSH" if r["attn"] == "lsh" else "ours, full attention" if r["attn"] == "full" else None
            L = r["seq"]
        elif r.get("impl") == "hf-reformer":
            key, L = "HuggingFace Reformer (PyTorch)", r["L"]
        else:
            continue
        if key:
            lines.setdefault(key, {})[L] = r["tokens_per_s"]

colours = {"ours, LSH": "#1f77b4", "ours, full attention": "#ff7f0e", "HuggingFace Reformer (PyTorch)": "#2ca02c"}
xs = sorted({L for pts in lines.values() for L in pts})
ys = [v for pts in lines.values() for v in pts.values()]
x0, x1 = math.log2(min(xs)), math.log2(max(xs))
y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
W, H, left, top, pw, ph = 880, 460, 80, 50, 520, 340
X = lambda L: left + (math.log2(L) - x0) / max(x1 - x0, 1e-9) * pw
Y = lambda v: top + ph - (math.log10(v) - y0) / (y1 - y0) * ph
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
       '<rect width="100%" height="100%" fill="white"/>',
       f'<text x="{left}" y="28" font-size="15">{a.title}</text>',
       f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']
for e in range(y0, y1 + 1):
    for m in (1, 2, 5):
        v = m * 10 ** e
        if 10 ** y0 <= v <= 10 ** y1:
            out.append(f'<line x1="{left}" y1="{Y(v):.1f}" x2="{left + pw}" y2="{Y(v):.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{left - 6}" y="{Y(v) + 4:.1f}" font-size="11" text-anchor="end">{v:g}</text>')
for L in xs:
    out.append(f'<line x1="{X(L):.1f}" y1="{top}" x2="{X(L):.1f}" y2="{top + ph}" stroke="#eee"/>')
    out.append(f'<text x="{X(L):.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle">{L:,}</text>')
out.append(f'<text x="{left + pw / 2}" y="{top + ph + 36}" font-size="12" text-anchor="middle">sequence length (tokens)</text>')
out.append(f'<text x="18" y="{top + ph / 2}" font-size="12" transform="rotate(-90 18 {top + ph / 2})" text-anchor="middle">tokens per second</text>')
for i, (key, pts) in enumerate(sorted(lines.items())):
    c = colours.get(key, "#000")
    path = " ".join(f"{X(L):.1f},{Y(v):.1f}" for L, v in sorted(pts.items()))
    out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2.5"/>')
    for L, v in sorted(pts.items()):
        out.append(f'<circle cx="{X(L):.1f}" cy="{Y(v):.1f}" r="3.5" fill="{c}"/>')
    y = top + 20 + 20 * i
    out.append(f'<line x1="{left + pw + 14}" y1="{y}" x2="{left + pw + 38}" y2="{y}" stroke="{c}" stroke-width="3"/>')
    out.append(f'<text x="{left + pw + 44}" y="{y + 4}" font-size="12">{key}</text>')
out.append("</svg>")
open(a.out, "w").write("\n".join(out) + "\n")
