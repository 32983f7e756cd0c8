"""Cores a lambda-hat job kept busy, read from the benchmark file its worker wrote.

Shared by scripts/bench-ess.sh and scripts/peers/blackjax_llc.py; standard library only."""
import os


def cores_used(store, rule, key):
    """CPU seconds over wall seconds of one job, from store/benchmarks/RULE/KEY.tsv (its header
    row, then one row); None when the file is absent or unreadable."""
    try:
        with open(os.path.join(store, "benchmarks", rule, key + ".tsv")) as f:
            head, row = (line.rstrip("\n").split("\t") for line in f.readlines()[:2])
        row = dict(zip(head, row))
        return float(row["cpu_time"]) / float(row["s"])
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        return None
