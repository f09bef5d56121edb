#!/usr/bin/env python3
"""The Long Range Arena's ListOps task (Tay et al. 2020, after Nangia and Bowman 2018), generated.

Writes DIR/basic_train.tsv, basic_val.tsv and basic_test.tsv in LRA's format: a header line
"Source<TAB>Target", then one expression a line with its value (0-9). Expressions are trees of the
operators [MIN, [MAX, [MED (the median, rounded down) and [SM (the sum modulo 10) over the digits
0-9, written with LRA's binary parenthesisation: an operator with arguments a b c is
"( ( ( [OP a ) b ) c ) ] )" (LRA's reader drops the parentheses). The algorithm is LRA's:
a node below the maximum depth is a digit with probability 3/4, else an operator with 2 to
max_args arguments; a tree is kept when its token count (digits, operators and closing
brackets) lies strictly between min_length and max_length and it was not drawn before; the first
train, then valid, then test trees of the order they were drawn form the splits. LRA used 96,000 /
2,000 / 2,000, depth 10, 10 arguments, lengths 500 to 2,000. The same --seed gives the same files.

  scripts/listops.py --out data/listops --seed 1
"""
import argparse
import csv
import os
import random
import sys

OPERATORS = ["[MIN", "[MAX", "[MED", "[SM"]
DIGIT_P = 0.75  # a node below the maximum depth is a digit with this probability


def draw(rng, depth, max_depth, max_args):
    """A random tree (a digit, or (operator, [children])) and its token count."""
    if depth >= max_depth or rng.random() < DIGIT_P:
        return rng.randrange(10), 1
    children, length = [], 2  # the operator and its closing bracket
    for _ in range(rng.randint(2, max_args)):
        child, n = draw(rng, depth + 1, max_depth, max_args)
        children.append(child)
        length += n
    return (rng.choice(OPERATORS), tuple(children)), length


def text(tree):
    """LRA's source text of a tree."""
    if isinstance(tree, int):
        return str(tree)
    op, children = tree
    s = "( " + op + " " + text(children[0]) + " )"
    for child in children[1:]:
        s = "( " + s + " " + text(child) + " )"
    return "( " + s + " ] )"


def value(tree):
    if isinstance(tree, int):
        return tree
    op, children = tree
    v = sorted(value(c) for c in children)
    if op == "[MIN":
        return v[0]
    if op == "[MAX":
        return v[-1]
    if op == "[MED":  # numpy's median, then int(): the mean of the middle two, rounded down
        n = len(v)
        return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) // 2
    return sum(v) % 10


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="directory for basic_{train,val,test}.tsv")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train", type=int, default=96000)
    p.add_argument("--valid", type=int, default=2000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--max-depth", type=int, default=10)
    p.add_argument("--max-args", type=int, default=10)
    p.add_argument("--min-length", type=int, default=500)
    p.add_argument("--max-length", type=int, default=2000)
    a = p.parse_args()
    if min(a.train, a.valid, a.test) < 0 or a.max_args < 2 or a.max_depth < 1 or a.min_length + 1 >= a.max_length:
        sys.exit("listops.py: counts must be >= 0, --max-args >= 2, --max-depth >= 1, --min-length + 1 < --max-length")
    rng = random.Random(a.seed)
    want, seen, rows = a.train + a.valid + a.test, set(), []
    while len(rows) < want:
        tree, n = draw(rng, 1, a.max_depth, a.max_args)
        if a.min_length < n < a.max_length and tree not in seen:
            seen.add(tree)
            rows.append((text(tree), value(tree)))
    os.makedirs(a.out, exist_ok=True)
    splits = [("train", rows[:a.train]), ("val", rows[a.train:a.train + a.valid]), ("test", rows[a.train + a.valid:])]
    for name, part in splits:
        path = os.path.join(a.out, "basic_%s.tsv" % name)
        with open(path + ".tmp", "w", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["Source", "Target"])
            w.writerows(part)
        os.replace(path + ".tmp", path)
        print("%s: %d expressions" % (path, len(part)))


if __name__ == "__main__":
    main()
