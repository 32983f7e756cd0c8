#!/usr/bin/env bash
# bench-slurm.sh — wall time of the SLURM executor's orchestration on the local cluster.
#
#   scripts/bench-slurm.sh [RUNS]      (default 3 runs; needs scripts/slurm-local.sh start)
#   LAMBDA_HAT_BIN=target/debug/lambda-hat scripts/bench-slurm.sh   (skip the release build)
#   WORKER=real scripts/bench-slurm.sh 2   (the real worker on the SLURM tests' tiny budgets)
#   BUNDLE="1 3 auto" scripts/bench-slurm.sh   (the bundle sizes to time; default "1 auto")
#
# A 10 targets × 3 samplers sweep (10 build_target + 30 run_sampler = 40 jobs) of near-instant
# jobs, submitted with `--profile local-slurm -j 40`, timed from the start of lambda-hat to its
# "40 of 40 jobs done." The jobs run a stand-in worker that only writes the output files, so the
# figure is what lambda-hat + SLURM cost per sweep (submission, dependencies, polling), not the
# numerics. For scale: Snakemake's SLURM executor plugin needs about 160 s for the same 40
# trivial jobs on this kind of machine.
#
# Each `BUNDLE` value is timed separately (`--bundle-size`): 1 is one SLURM job or array task per
# job; 3 runs each target's build and three samplers in one; `auto` packs the tiny targets into
# bundles of about a minute (README, "Bundling tiny jobs").
# WORKER=real runs the real worker instead of the stand-in, on the sweep of tests/slurm.rs
# (200 rows, 50 training steps, 2 chains of 100-200 draws: each job takes well under a second).
# Measured on the idle 2-CPU local cluster (release binary, median of 3-5 interleaved runs): real
# worker 9.9-18.7 s (bundle-size 1, 40 SLURM jobs and array tasks), 5.1-5.3 s (3, 10 array
# tasks), 3.1-3.2 s (auto, 1 SLURM job); stand-in worker 10.0 s vs 2.7 s (BUNDLE=3).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
worker="${WORKER:-stub}"
bundles="${BUNDLE:-1 auto}"

command -v sbatch >/dev/null || { echo "bench-slurm: sbatch not on PATH; run scripts/slurm-local.sh start first" >&2; exit 2; }
if [ -n "${LAMBDA_HAT_BIN:-}" ]; then
  bin="$(realpath "$LAMBDA_HAT_BIN")"
else
  cargo build --release --quiet
  bin="$PWD/target/release/lambda-hat"
fi

work="$(mktemp -d /tmp/lh-bench-slurm.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The stand-in worker: the files a real job writes, completion marker last.
cat >"$work/worker.sh" <<'EOF'
#!/usr/bin/env bash
set -e
spec="$3"; dir=$(dirname "$spec")
case "$2" in
  build-target) files="data.npz params.npz"; marker=meta.json ;;
  run-sampler)  files="trace.npz";            marker=analysis.json ;;
esac
for f in $files; do : >"$dir/$f"; done
echo '{}' >"$dir/.$marker.tmp" && mv "$dir/.$marker.tmp" "$dir/$marker"
EOF
chmod +x "$work/worker.sh"

mkdir -p "$work/profiles/bench"
cp profiles/local-slurm/config.yaml "$work/profiles/bench/config.yaml"
case "$worker" in
  stub) echo "worker-command: \"$work/worker.sh\"" >>"$work/profiles/bench/config.yaml" ;;
  real) echo "worker-command: \"$bin\"" >>"$work/profiles/bench/config.yaml" ;;
  *) echo "bench-slurm: WORKER must be stub or real, not '$worker'" >&2; exit 2 ;;
esac

{
  echo 'store_root: runs'
  echo 'targets:'
  for s in $(seq 1 10); do
    if [ "$worker" = real ]; then
      echo "  - { model: small, data: small, seed: $s, overrides: { data: { n_data: 200 }, training: { steps: 50 } } }"
    else
      echo "  - { model: small, data: small, seed: $s }"
    fi
  done
  echo 'samplers:'
  if [ "$worker" = real ]; then
    echo '  - { name: sgld, overrides: { chains: 2, warmup: 50, steps: 200, eval_every: 10, batch_size: 32 } }'
    echo '  - { name: hmc, overrides: { chains: 2, warmup: 50, draws: 100, num_integration_steps: 5 } }'
    echo '  - { name: mclmc, overrides: { chains: 2, draws: 100, num_tuning_steps: 100 } }'
  else
    echo '  - { name: hmc }'
    echo '  - { name: sgld }'
    echo '  - { name: mclmc }'
  fi
} >"$work/experiments.yaml"

# Rounds interleave the bundle sizes (1, auto, 1, auto, …), so a cluster that slows down over
# the benchmark (job records piling up in slurmctld until MinJobAge purges them) slows all alike.
declare -A times
for r in $(seq 1 "$runs"); do
  for bundle in $bundles; do
    rm -rf "$work/runs"
    start=$(date +%s.%N)
    (cd "$work" && "$bin" --configfile experiments.yaml --profile bench -j 40 -q --bundle-size "$bundle") 2>"$work/log"
    end=$(date +%s.%N)
    grep -q "40 of 40 jobs done" "$work/log" || { cat "$work/log" >&2; exit 1; }
    # SLURM jobs and array tasks the sweep used (first submissions), from the journal.
    slurm_jobs=$(grep '"event":"submitted"' "$work/runs/.lambda-hat/journal.jsonl" \
      | grep -o '"slurm_job_id":"[^"]*"' | sort -u | wc -l)
    t=$(echo "$end - $start" | bc)
    times[$bundle]="${times[$bundle]:-} $t"
    printf 'bundle-size %s, run %d: %.1f s, %d SLURM jobs or array tasks\n' "$bundle" "$r" "$t" "$slurm_jobs"
  done
done
for bundle in $bundles; do
  printf '%s\n' ${times[$bundle]} | sort -n | awk -v b="$bundle" -v w="$worker" '{a[NR]=$1} END {printf "bundle-size %s (%s worker): median of %d runs: %.1f s (40 jobs, -j 40; Snakemake SLURM plugin: ~160 s)\n", b, w, NR, a[int((NR+1)/2)]}'
done
