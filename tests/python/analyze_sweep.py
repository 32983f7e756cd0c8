#!/usr/bin/env python3
"""Check that `lambda-hat results` gives the numbers the users' pandas script gives.

The users' guide ("Results Aggregation" in the seed's parameter-sweeps.md) analyzes a store
with the pandas function `analyze_sweep_results` below, kept as it is there (only the store
path is passed in). This script runs it on a store, reads the CSV that `lambda-hat results`
printed for the same store, and compares every number. It also shows how to load a run's
`trace.npz` with numpy, and checks each trace against its `analysis.json`.

Usage:
    python analyze_sweep.py STORE_ROOT RESULTS_CSV [GROUPED_CSV]

    RESULTS_CSV  output of `lambda-hat results --runs-root STORE_ROOT --format csv`
    GROUPED_CSV  output of `lambda-hat results --runs-root STORE_ROOT --format csv
                 --group-by sampler,target_params` (optional)

Exits 0 when everything agrees, 1 with a list of differences otherwise, 2 on bad usage.
Needs numpy and pandas. Like the seed's script, it expects a finished store: it opens the
analysis.json of every run directory.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


# --- The seed's "Results Aggregation" script --------------------------------------------------


def analyze_sweep_results(runs_root="runs"):
    results = []

    for target_dir in (Path(runs_root) / "targets").iterdir():
        if not target_dir.name.startswith("tgt_"):
            continue

        # Load target metadata
        with open(target_dir / "meta.json") as f:
            meta = json.load(f)

        # Collect all sampling runs
        for run_dir in target_dir.iterdir():
            if not run_dir.name.startswith("run_"):
                continue

            with open(run_dir / "analysis.json") as f:
                analysis = json.load(f)

            results.append({
                "target_id": meta["target_id"],
                "model_depth": meta["model_cfg"]["depth"],
                "n_data": meta["data_cfg"]["n_data"],
                "target_params": meta["dims"]["p"],
                "seed": meta["seed"],
                "sampler": run_dir.name.split("_")[1],
                "llc_mean": analysis["llc_mean"],
                "llc_std": analysis["llc_std"],
                "ess": analysis["ess"],
                "walltime": analysis["walltime_sec"]
            })

    df = pd.DataFrame(results)

    # Example analysis: LLC vs network size by sampler
    summary = df.groupby(["sampler", "target_params"]).agg({
        "llc_mean": ["mean", "std"],
        "ess": "mean",
        "walltime": "mean"
    }).round(3)

    return df, summary


# --- Loading a trace with numpy ---------------------------------------------------------------


def load_trace(run_dir):
    """All arrays of a run's trace.npz, by name.

    `llc` and `loss` are [chain, draw] arrays of the recorded draws (after warmup); the other
    arrays are per-step sampler statistics whose names depend on the sampler (e.g.
    `acceptance`, `step_size`, `warmup_step_size`, `energy_error`).
    """
    with np.load(Path(run_dir) / "trace.npz") as npz:
        return {name: npz[name] for name in npz.files}


# --- The comparison ---------------------------------------------------------------------------

# Our CSV's column names for the seed's.
OURS = {"model_depth": "depth", "walltime": "walltime_sec"}
INTEGER_COLUMNS = ["model_depth", "n_data", "target_params", "seed"]
FLOAT_COLUMNS = ["llc_mean", "llc_std", "ess", "walltime"]
KEY_COLUMNS = ["target_id", "sampler"]
# Both sides read the same doubles from the same JSON text; allow only rounding noise.
RTOL = 1e-12


def close(a, b, rtol=RTOL):
    return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                       rtol=rtol, atol=0.0, equal_nan=True)


def compare_rows(seed_df, ours):
    """Every run's numbers, matched as multisets (the seed's rows carry no run name)."""
    problems = []
    ours = ours.rename(columns={v: k for k, v in OURS.items()})
    if len(seed_df) != len(ours):
        return [f"pandas found {len(seed_df)} runs, lambda-hat results {len(ours)}"]
    order = KEY_COLUMNS + FLOAT_COLUMNS + INTEGER_COLUMNS
    a = seed_df.sort_values(order, na_position="last").reset_index(drop=True)
    b = ours.sort_values(order, na_position="last").reset_index(drop=True)
    for col in KEY_COLUMNS:
        if list(a[col]) != list(b[col]):
            problems.append(f"column {col} differs:\n  pandas: {list(a[col])}\n  ours:   {list(b[col])}")
    for col in INTEGER_COLUMNS:
        if [int(x) for x in a[col]] != [int(x) for x in b[col]]:
            problems.append(f"column {col} differs: pandas {list(a[col])}, ours {list(b[col])}")
    for col in FLOAT_COLUMNS:
        if not close(a[col], b[col]):
            problems.append(f"column {col} differs: pandas {list(a[col])}, ours {list(b[col])}")
    return problems


def compare_groups(seed_df, seed_summary, grouped):
    """`--group-by sampler,target_params` against pandas' groupby of the same rows."""
    problems = []
    keys = ["sampler", "target_params"]
    exact = seed_df.groupby(keys).agg({
        "llc_mean": ["mean", "std"],
        "ess": "mean",
        "walltime": "mean",
    })
    sizes = seed_df.groupby(keys).size()
    grouped = grouped.set_index(keys).sort_index()
    if list(exact.index) != list(grouped.index):
        return [f"groups differ: pandas {list(exact.index)}, ours {list(grouped.index)}"]
    pairs = [
        (("llc_mean", "mean"), "llc_mean_mean"),
        (("llc_mean", "std"), "llc_mean_std"),
        (("ess", "mean"), "ess_mean"),
        (("walltime", "mean"), "walltime_sec_mean"),
    ]
    for theirs, ours in pairs:
        if not close(exact[theirs], grouped[ours], rtol=1e-9):
            problems.append(f"{ours} differs: pandas {list(exact[theirs])}, ours {list(grouped[ours])}")
        # The seed's summary is rounded to 3 decimals; ours must round to within that.
        if not np.allclose(seed_summary[theirs], grouped[ours], rtol=0, atol=5.1e-4, equal_nan=True):
            problems.append(f"{ours} disagrees with the seed's rounded summary")
    if list(sizes) != list(grouped["n_runs"]):
        problems.append(f"n_runs differs: pandas {list(sizes)}, ours {list(grouped['n_runs'])}")
    return problems


def check_traces(store_root, ours):
    """Each run's trace.npz: [chain, draw] llc whose mean is analysis.json's llc_mean."""
    problems = []
    for row in ours.itertuples():
        run_dir = Path(store_root) / "targets" / row.target_id / Path(row.run_dir).name
        trace = load_trace(run_dir)
        llc, loss = trace["llc"], trace["loss"]
        if llc.ndim != 2 or llc.shape != loss.shape:
            problems.append(f"{run_dir}: llc {llc.shape} and loss {loss.shape} are not [chain, draw]")
            continue
        if not close(llc.mean(), row.llc_mean, rtol=1e-9):
            problems.append(f"{run_dir}: mean of trace llc {llc.mean()} != llc_mean {row.llc_mean}")
    return problems


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    store_root, results_csv = argv[1], argv[2]
    seed_df, seed_summary = analyze_sweep_results(store_root)
    ours = pd.read_csv(results_csv)
    print(seed_summary)

    problems = compare_rows(seed_df, ours)
    if len(argv) == 4:
        problems += compare_groups(seed_df, seed_summary, pd.read_csv(argv[3]))
    problems += check_traces(store_root, ours)

    if problems:
        print(f"{len(problems)} difference(s) between pandas and lambda-hat results:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(f"OK: {len(ours)} runs agree with pandas, and their traces with analysis.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
