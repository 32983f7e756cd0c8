#!/usr/bin/env bash
# bench-ess.sh — what users feel: bulk ESS of the LLC per second and per gradient, per sampler.
#
#   scripts/bench-ess.sh               (or scripts/bench.sh ess; about 4 min on 2 idle cores)
#   QUICK=1 scripts/bench-ess.sh       (smoke run: small budgets, base model in f64 only, ~1 min)
#   LAMBDA_HAT_BIN=path BENCH_DIR=/tmp/x JOBS=1 scripts/bench-ess.sh   (the defaults but the binary)
#
# Runs real sweeps with the release binary in a scratch folder (BENCH_DIR, default
# /tmp/lh-bench-ess; its store is replaced on every run and kept afterwards, so that
# scripts/bench-peers.sh can sample the very same targets), then prints two tables read from the
# store: one row per sampler run (λ̂, R-hat, bulk ESS, gradients per second, ESS per second, ESS
# per 1000 gradients, and the cores the job kept busy: CPU time over wall time of its benchmark
# file; wall time is the whole job's, loading and plots included) and one row per
# target (training steps per second; wall time includes generating the data).
#
# The models (the sizes issue 13 measured):
#   dln    deep linear network 4 → 3 → 2 (identity, no bias, p = 18), n = 10,000, f64, with a
#          full-rank teacher (the architecture and seed of validate's trained_dln432: λ = 4)
#   small  4 → 8 → 8 → 1, tanh (p = 121), n = 1,000, f64, trained 4,000 steps as in the demo
#   base   32 → 62 → 62 → 62 → 1, relu with residual connections (p = 9,921), n = 20,000, f64 and
#          f32, trained only 200 steps: a gradient costs about 30 ms on 2 cores, so in minutes
#          its runs measure gradient throughput, and their ESS and λ̂ are not estimates (the
#          table's R-hat and ESS columns say so). No NUTS: a depth-10 tree is 1,023 gradients.
# All use the default posterior (β = 1/ln n, γ = 1) and 4 chains. Sampler budgets are the
# presets' where they fit in minutes, else the demo's (see the sweep files written below).
# Training: 40,000 Adam steps (lr 1e-3, full batch, no L-BFGS finish) of a second dln target.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
quick="${QUICK:-0}"
# One job at a time by default, and each job gets cores/JOBS threads (cpus_per_task): a run then
# has every core for its chains, as the JAX peer (scripts/bench-peers.sh) has, so per-run rates
# are comparable. Without the cpus_per_task a job runs on one thread (the rule's default, as in
# Snakemake), and until 2026-12-03 this script measured lambda-hat on 1 core against JAX on 2.
jobs="${JOBS:-1}"
dir="${BENCH_DIR:-/tmp/lh-bench-ess}"
case "$quick" in 0|1) ;; *) echo "bench-ess: QUICK must be 0 or 1, not '$quick'" >&2; exit 2 ;; esac
case "$jobs" in ''|*[!0-9]*|0) echo "bench-ess: JOBS must be a positive integer, not '$jobs'" >&2; exit 2 ;; esac
cores=$(nproc)
threads=$(( cores / jobs > 0 ? cores / jobs : 1 ))

if [ -n "${LAMBDA_HAT_BIN:-}" ]; then
  bin="$(realpath "$LAMBDA_HAT_BIN")"
else
  cargo build --release --quiet
  bin="$repo/target/release/lambda-hat"
fi
[ -x "$bin" ] || { echo "bench-ess: no lambda-hat binary at $bin" >&2; exit 2; }

# The store is replaced, so make sure it is one: never delete a folder lambda-hat did not write.
if [ -e "$dir/runs" ] && [ ! -d "$dir/runs/.lambda-hat" ]; then
  echo "bench-ess: $dir/runs exists and is not a lambda-hat store; choose another BENCH_DIR" >&2
  exit 2
fi
mkdir -p "$dir/config"
rm -rf "$dir/runs"

# Budgets: full, then QUICK.
if [ "$quick" = 1 ]; then
  dln_hmc='{ warmup: 200, draws: 200 }'
  dln_nuts='{ warmup: 200, draws: 100, max_tree_depth: 6 }'
  dln_mclmc='{ num_tuning_steps: 2000, draws: 2000 }'
  dln_sgld='{ steps: 6000, eval_every: 20 }'
  small_hmc='{ warmup: 200, draws: 200, num_integration_steps: 10, target_acceptance: 0.9 }'
  small_nuts='{ warmup: 200, draws: 100, target_acceptance: 0.9 }'
  small_mclmc='{ num_tuning_steps: 1000, draws: 1000 }'
  small_sgld='{ steps: 6000, eval_every: 20 }'
  base_train=50
  base_hmc='{ warmup: 10, draws: 10, num_integration_steps: 3, step_size: 0.001, adapt_step_size: false }'
  base_mclmc='{ num_tuning_steps: 50, draws: 20 }'
  base_sgld='{ steps: 300, warmup: 100, eval_every: 10 }'
  base_precisions="f64"
  train_steps=4000
else
  # dln: the presets (HMC 50 steps at 0.99, MCLMC 3 x 2,000 tuning steps), fewer draws so that
  # the JAX peer (which sums over all 10,000 rows) finishes too.
  dln_hmc='{ warmup: 500, draws: 500 }'
  dln_nuts='{ draws: 500 }'
  dln_mclmc='{ draws: 10000 }'
  dln_sgld='{ steps: 50000, eval_every: 50 }'
  # small: the demo's budgets for a smooth, cheap posterior (config/experiments.yaml).
  small_hmc='{ warmup: 500, draws: 1000, num_integration_steps: 10, target_acceptance: 0.9 }'
  small_nuts='{ warmup: 500, draws: 500, target_acceptance: 0.9 }'
  small_mclmc='{ num_tuning_steps: 2000, draws: 4000 }'
  small_sgld='{ steps: 40000, eval_every: 40 }'
  base_train=200
  # base: about 500 gradients per run (30-80 ms each): a throughput figure, not an estimate.
  # HMC at a fixed small step: a 20-step warmup cannot adapt one (it chose 0.68 and every
  # transition diverged, which lambda-hat refuses as a stuck chain, since 2026-12-06).
  base_hmc='{ warmup: 20, draws: 20, num_integration_steps: 3, step_size: 0.001, adapt_step_size: false }'
  base_mclmc='{ num_tuning_steps: 100, draws: 30 }'
  base_sgld='{ steps: 1000, warmup: 200, eval_every: 10 }'
  base_precisions="f64 f32"
  train_steps=40000
fi

cat >"$dir/config/dln.yaml" <<EOF
store_root: runs
precision: f64
targets:
  - { model: small, data: small, teacher: _null, seed: 12,
      overrides: { model: { in_dim: 4, out_dim: 2, depth: 1, widths: [3], target_params: null,
                            activation: identity, bias: false, skip_connections: false, init: lecun },
                   data: { n_data: 10000 } } }
samplers:
  - { name: hmc, overrides: $dln_hmc }
  - { name: nuts, overrides: $dln_nuts }
  - { name: mclmc, overrides: $dln_mclmc }
  - { name: sgld, overrides: $dln_sgld }
EOF
cat >"$dir/config/small.yaml" <<EOF
store_root: runs
precision: f64
targets:
  - { model: small, data: small, teacher: _null, seed: 42,
      overrides: { model: { widths: [8, 8], target_params: null, activation: tanh },
                   data: { n_data: 1000 }, training: { steps: 4000 } } }
samplers:
  - { name: hmc, overrides: $small_hmc }
  - { name: nuts, overrides: $small_nuts }
  - { name: mclmc, overrides: $small_mclmc }
  - { name: sgld, overrides: $small_sgld }
EOF
cat >"$dir/config/base.yaml" <<EOF
store_root: runs
precision: f64
targets:
  - { model: base, data: base, teacher: _null, seed: 1,
      overrides: { model: { in_dim: 32, depth: 3, widths: [62, 62, 62], target_params: null },
                   training: { steps: $base_train } } }
samplers:
  - { name: hmc, overrides: $base_hmc }
  - { name: mclmc, overrides: $base_mclmc }
  - { name: sgld, overrides: $base_sgld }
EOF
# Training alone (samplers: [] only builds the target): Adam for every step, no L-BFGS finish,
# and a grad_tol no gradient meets, so that all the steps run.
cat >"$dir/config/train.yaml" <<EOF
store_root: runs
precision: f64
targets:
  - { model: small, data: small, teacher: _null, seed: 7,
      overrides: { model: { in_dim: 4, out_dim: 2, depth: 1, widths: [3], target_params: null,
                            activation: identity, bias: false, skip_connections: false, init: lecun },
                   data: { n_data: 10000 },
                   training: { optimizer: adam, learning_rate: 0.001, steps: $train_steps,
                               finish: none, grad_tol: 1.0e-300, eval_every: 1000 } } }
samplers: []
EOF

echo "== lambda-hat $("$bin" --version 2>/dev/null | head -1) in $dir (-j $jobs, $threads thread(s) per job, QUICK=$quick); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# run_sweep NAME PRECISION: one sweep file, its log in $dir/NAME-PRECISION.log.
run_sweep() {
  local name="$1" prec="$2" start end log="$dir/$1-$2.log"
  start=$(date +%s.%N)
  (cd "$dir" && "$bin" --configfile "config/$name.yaml" --config "precision=$prec" -j "$jobs" --cores "$cores" \
      --set-resources "run_sampler:cpus_per_task=$threads" "build_target:cpus_per_task=$threads" -q) >"$log" 2>&1 ||
    { cat "$log" >&2; echo "bench-ess: the sweep config/$name.yaml ($prec) failed (log above)" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '   %-6s %s  %6.1f s\n' "$name" "$prec" "$(echo "$end - $start" | bc)"
}
run_sweep train f64
run_sweep dln f64
run_sweep small f64
for prec in $base_precisions; do run_sweep base "$prec"; done
echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; above 2, other work slowed these figures)"

PYTHONPATH="$repo/scripts/peers" python3 - "$dir/runs" <<'EOF'
"""Prints the sampler and training tables of a bench-ess store."""
import glob
import json
import os
import sys

from job_cores import cores_used  # scripts/peers/job_cores.py

store = sys.argv[1]
NAMES = {(4, (3,), 2): "dln", (4, (8, 8), 1): "small", (32, (62, 62, 62), 1): "base"}


def label(meta):
    m = meta["model_cfg"]
    widths = tuple(m.get("widths") or ())
    name = NAMES.get((m["in_dim"], widths, m["out_dim"]))
    arch = "-".join(str(w) for w in (m["in_dim"], *widths, m["out_dim"]))
    return name or f"{arch} {m['activation']}"


runs, targets = [], []
for meta_path in sorted(glob.glob(os.path.join(store, "targets", "*", "meta.json"))):
    meta = json.load(open(meta_path))
    tdir = os.path.dirname(meta_path)
    model, prec, p = label(meta), meta.get("precision", "?"), meta["dims"]["p"]
    conv = meta.get("convergence") or {}
    targets.append((model, prec, p, meta["dims"]["n"], meta["training_cfg"]["optimizer"],
                    conv.get("optimizer_steps"), conv.get("finish_steps"), meta["metrics"]["steps_run"],
                    meta["walltime_sec"]))
    for a_path in sorted(glob.glob(os.path.join(tdir, "run_*", "analysis.json"))):
        a = json.load(open(a_path))
        a["cores"] = cores_used(store, "run_sampler", f"{a['target_id']}.{a['run_id']}")
        runs.append((model, prec, p, a))

order = {"dln": 0, "small": 1, "base": 2}
samp = {"hmc": 0, "nuts": 1, "mclmc": 2, "sgld": 3}
runs.sort(key=lambda r: (order.get(r[0], 9), r[1] != "f64", samp.get(r[3]["sampler"], 9)))
head = ("model", "prec", "p", "sampler", "λ̂", "R-hat", "bulk ESS", "grads", "wall s",
        "grads/s", "ESS/s", "ESS/1k grads", "cores", "healthy")
def rhat(r):
    return f"{r:.3f}" if r < 100 else f"{r:.1e}"


rows = []
for model, prec, p, a in runs:
    g, t, ess = a["grad_evals"], a["walltime_sec"], a["ess_bulk"]
    rows.append((model, prec, str(p), a["sampler"], f"{a['llc_mean']:.3f}", rhat(a["r_hat"]),
                 f"{ess:.0f}", f"{g:,}", f"{t:.1f}", f"{g / t:,.0f}", f"{ess / t:,.1f}",
                 f"{1000 * ess / g:.3g}" if g else "-", f"{a['cores']:.2f}" if a["cores"] else "-",
                 "yes" if a["healthy"] else "no"))


def table(head, rows):
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).rjust(n) if i >= 2 else str(x).ljust(n) for i, (x, n) in enumerate(zip(r, w)))
    print(line(head))
    print("  ".join("-" * n for n in w))
    for r in rows:
        print(line(r))


print("\n== sampling: bulk ESS of the LLC draws (4 chains, warmup included in grads and wall time)")
table(head, rows)
print("\n== training (meta.json; wall time includes generating the data)")
trows = []
targets.sort(key=lambda t: (order.get(t[0], 9), t[1] != "f64", -t[7]))
for model, prec, p, n, opt, o_steps, f_steps, steps, wall in targets:
    trows.append((model, prec, str(p), f"{n:,}", f"{opt} {o_steps:,} + lbfgs {f_steps:,}" if f_steps else f"{opt} {o_steps:,}",
                  f"{steps:,}", f"{wall:.2f}", f"{steps / wall:,.0f}"))
table(("model", "prec", "p", "n", "steps run", "steps", "wall s", "steps/s"), trows)
EOF
echo
echo "store kept for scripts/bench-peers.sh: $dir/runs"
