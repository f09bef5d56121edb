#!/usr/bin/env python3
"""What simple rules score on ListOps: the answer looked up (most frequent class in the training
file) by a feature of the expression, and that lookup's cross-entropy (add-half smoothing), on
one or more test files. The figures README.md quotes for what the classifier has learned.

  scripts/listops_lookup.py data/listops/basic_train.tsv data/listops/basic_test.tsv [MORE.tsv ...]

Features: the top operator; with its first argument (a digit, or N for a nested expression);
with its first and last; with the largest and smallest digit among the top level's leading
and trailing runs of digits (the arguments before the first nested one and after the last, which
a position at either end sees nearby), whether other arguments remain, and the runs' length.
"""
import collections
import math
import sys


def parse(line):
    source, target = line.rstrip("\n").split("\t")
    tokens = [t for t in source.split() if t not in ("(", ")")]
    depth, args = 0, []
    for t in tokens[1:]:
        if t.startswith("["):
            if depth == 0:
                args.append("N")
            depth += 1
        elif t == "]":
            depth -= 1
        elif depth == 0:
            args.append(t)
    return tokens[0], args, int(target)


def load(path):
    with open(path) as f:
        next(f)  # the Source/Target header
        return [parse(line) for line in f]


def end_runs(args):
    lead = []
    for a in args:
        if a == "N":
            break
        lead.append(a)
    trail = []
    if len(lead) < len(args):
        for a in reversed(args):
            if a == "N":
                break
            trail.append(a)
    digits = lead + trail
    return digits, len(digits) < len(args)


def runs_max_min(op, args):
    digits, more = end_runs(args)
    return op, max(digits or ["-"]), min(digits or ["-"]), more, len(digits)


FEATURES = [
    ("top operator", lambda op, args: op),
    ("+ first argument", lambda op, args: (op, args[0])),
    ("+ first and last", lambda op, args: (op, args[0], args[-1])),
    ("+ max/min of the end runs", runs_max_min),
]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    train = load(sys.argv[1])
    test = [e for path in sys.argv[2:] for e in load(path)]
    print(f"{len(train)} training expressions, {len(test)} test expressions")
    for name, feature in FEATURES:
        counts = collections.defaultdict(collections.Counter)
        for op, args, y in train:
            counts[feature(op, args)][y] += 1
        right, nats = 0, 0.0
        for op, args, y in test:
            c = counts[feature(op, args)]
            guess = c.most_common(1)[0][0] if c else 0
            right += guess == y
            nats -= math.log((c[y] + 0.5) / (sum(c.values()) + 5.0))
        print(f"{name:28s} accuracy {100.0 * right / len(test):5.2f}%  cross-entropy {nats / len(test):.3f} nats")


if __name__ == "__main__":
    main()
