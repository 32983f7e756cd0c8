#!/usr/bin/env python3
"""Check that ArviZ reads lambda-hat's traces and agrees with analysis.json.

`load_run` below is README's ArviZ recipe, kept as it is there: it turns a run's `trace.npz`
into an `InferenceData` (posterior `llc`, sample_stats with ArviZ's names). This script applies
it to every finished run of a store and compares `az.summary` with the run's analysis.json:
mean, ess_bulk, ess_tail, r_hat and mcse_mean, and the divergence count from
`sample_stats.diverging` (a boolean array, as ArviZ expects).

Usage:
    python arviz_check.py STORE_ROOT

Exits 0 when everything agrees, 1 with a list of differences otherwise, 2 on bad usage.
Needs numpy and arviz (scripts/test.sh installs them).
"""

import json
import sys
from pathlib import Path

import numpy as np


# --- README's recipe -------------------------------------------------------------------------

import arviz as az

# trace.npz names → ArviZ's sample_stats names (the rest keep theirs).
STAT_NAMES = {"acceptance": "acceptance_rate", "n_leapfrog": "n_steps"}
DRAW_STATS = ["acceptance", "energy", "energy_error", "step_size", "diverging",
              "tree_depth", "n_leapfrog"]


def load_run(run_dir):
    """A run's trace as ArviZ InferenceData: posterior `llc`, per-draw sample_stats."""
    with np.load(Path(run_dir) / "trace.npz") as npz:
        stats = {STAT_NAMES.get(k, k): npz[k] for k in DRAW_STATS if k in npz.files}
        return az.from_dict(posterior={"llc": npz["llc"]}, sample_stats=stats or None)


# --- The comparison ---------------------------------------------------------------------------

# Both sides run the same algorithms in float64 on the same draws. lambda-hat's diagnostics are
# tested against ArviZ's reference numbers to 1e-6 relative (src/diagnostics.rs), so that is
# the bar here; the mean is a plain average and must agree to rounding.
RTOL = 1e-6
MEAN_RTOL = 1e-12
# analysis.json field for each az.summary column.
FIELDS = {"ess_bulk": "ess_bulk", "ess_tail": "ess_tail", "r_hat": "r_hat",
          "mcse_mean": "mcse_mean"}


def has_divergence_stats(idata):
    return "sample_stats" in idata.groups() and "diverging" in idata.sample_stats


def check_run(run_dir):
    problems = []
    analysis = json.loads((run_dir / "analysis.json").read_text())
    idata = load_run(run_dir)
    summary = az.summary(idata, var_names=["llc"], round_to="none")
    row = summary.loc["llc"]
    if not np.isclose(row["mean"], analysis["llc_mean"], rtol=MEAN_RTOL, atol=0.0):
        problems.append(f"{run_dir}: mean {row['mean']} vs llc_mean {analysis['llc_mean']}")
    for column, field in FIELDS.items():
        ours = analysis[field]
        # analysis.json writes an undefined number (R-hat of one chain) as null, ArviZ as NaN.
        if ours is None and np.isnan(row[column]):
            continue
        if ours is None or not np.isclose(row[column], ours, rtol=RTOL, atol=0.0):
            problems.append(f"{run_dir}: {column} {row[column]} vs {field} {ours}")
    if has_divergence_stats(idata):
        diverging = idata.sample_stats["diverging"].values
        if diverging.dtype != np.bool_:
            problems.append(f"{run_dir}: diverging is {diverging.dtype}, ArviZ expects bool")
        if int(diverging.sum()) != analysis["divergences"]:
            problems.append(f"{run_dir}: {int(diverging.sum())} diverging draws vs "
                            f"divergences {analysis['divergences']}")
    return problems


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    runs = sorted(p.parent for p in Path(argv[1]).glob("targets/tgt_*/run_*/analysis.json"))
    if not runs:
        print(f"no finished runs under {argv[1]}", file=sys.stderr)
        return 1
    problems = [p for run in runs for p in check_run(run)]
    for p in problems:
        print(p)
    with_divergence_stats = sum(has_divergence_stats(load_run(r)) for r in runs)
    print(f"{len(runs)} runs checked ({with_divergence_stats} with sample_stats.diverging), "
          f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
