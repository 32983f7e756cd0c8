#!/usr/bin/env bash
# bench-slurm.sh — wall time of the SLURM executor's orchestration on the local cluster.
#
#   scripts/bench-slurm.sh [RUNS]      (default 3 runs; needs scripts/slurm-local.sh start)
#   LAMBDA_HAT_BIN=target/debug/lambda-hat scripts/bench-slurm.sh   (skip the release build)
#
# A 10 targets × 3 samplers sweep (10 build_target + 30 run_sampler = 40 jobs) of near-instant
# jobs, submitted with `--profile local-slurm -j 40`, timed from the start of lambda-hat to its
# "40 of 40 jobs done." The jobs run a stand-in worker that only writes the output files, so the
# figure is what lambda-hat + SLURM cost per sweep (submission, dependencies, polling), not the
# numerics. For scale: Snakemake's SLURM executor plugin needs about 160 s for the same 40
# trivial jobs on this kind of machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"

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
echo "worker-command: \"$work/worker.sh\"" >>"$work/profiles/bench/config.yaml"

{
  echo 'store_root: runs'
  echo 'targets:'
  for s in $(seq 1 10); do echo "  - { model: small, data: small, seed: $s }"; done
  echo 'samplers:'
  echo '  - { name: hmc }'
  echo '  - { name: sgld }'
  echo '  - { name: mclmc }'
} >"$work/experiments.yaml"

times=()
for r in $(seq 1 "$runs"); do
  rm -rf "$work/runs"
  start=$(date +%s.%N)
  (cd "$work" && "$bin" --configfile experiments.yaml --profile bench -j 40 -q) 2>"$work/log"
  end=$(date +%s.%N)
  grep -q "40 of 40 jobs done" "$work/log" || { cat "$work/log" >&2; exit 1; }
  t=$(echo "$end - $start" | bc)
  times+=("$t")
  printf 'run %d: %.1f s\n' "$r" "$t"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median of %d runs: %.1f s (40 jobs, -j 40; Snakemake SLURM plugin: ~160 s)\n", NR, a[int((NR+1)/2)]}'
