#!/usr/bin/env bash
# Benchmarks (never run as tests). Usage: scripts/bench.sh [plan|gradient|slurm|ess|all]
#   plan      planning + dry-run job stats (-n -q) of a 1000 targets x 1000 samplers sweep
#             (1,001,000 jobs): wall time and peak memory
#   gradient  full-batch gradient evaluations per second and HMC wall time (cargo bench)
#   slurm     10 targets x 3 samplers of near-instant jobs on the local SLURM (-j 40)
#   ess       what users feel: real sweeps of a deep linear network, the small and the base model
#             with every sampler; bulk ESS of the LLC per second and per gradient, and training
#             steps per second (scripts/bench-ess.sh; QUICK=1 for a smoke run). Not in `all`.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"

bench_plan() {
  cargo build --release --quiet
  local dir
  dir="$(mktemp -d)"
  mkdir -p "$dir/config"
  python3 scripts/gen-big-sweep.py 1000 1000 > "$dir/config/experiments.yaml"
  echo "== planning a 1000 x 1000 sweep (1,001,000 jobs): lambda-hat -n -q"
  for i in 1 2 3; do
    ( cd "$dir" && /usr/bin/time -f "run $i: %e s wall, %M KiB peak RSS" "$OLDPWD/target/release/lambda-hat" -n -q ) 2>&1 | grep -E "total|run [0-9]"
  done
  rm -rf "$dir"
}

case "$what" in
  plan) bench_plan ;;
  gradient) cargo bench --bench gradient; cargo bench --bench hmc ;;
  slurm) bash scripts/bench-slurm.sh ;;
  ess) bash scripts/bench-ess.sh ;;
  all) bench_plan; cargo bench --bench gradient; cargo bench --bench hmc; bash scripts/bench-slurm.sh ;;
  *) echo "usage: scripts/bench.sh [plan|gradient|slurm|ess|all]" >&2; exit 2 ;;
esac
