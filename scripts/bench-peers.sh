#!/usr/bin/env bash
# bench-peers.sh — lambda-hat against JAX + BlackJAX on the same targets (never run in CI).
#
#   scripts/bench-peers.sh             (about 10 min on 2 idle cores, most of it JAX)
#   QUICK=1 scripts/bench-peers.sh     (smoke run: bench-ess.sh's QUICK budgets, f64 only)
#   PEERS_STORE=/tmp/lh-bench-ess/runs scripts/bench-peers.sh   (reuse a bench-ess.sh store)
#   PEERS_VENV=/tmp/lh-peers-venv      (the scratch virtual environment, reused if present)
#
# 1. Installs JAX, BlackJAX, optax and ArviZ (CPU, the pinned versions below) with pip into a
#    scratch virtual environment and prints their versions.
# 2. Runs scripts/bench-ess.sh (its tables are printed too) unless PEERS_STORE names a store
#    it wrote before.
# 3. Runs scripts/peers/blackjax_llc.py once per precision: for every target of the store it
#    loads the same X, Y and w* and builds the same localized tempered posterior in JAX, and
#    runs BlackJAX HMC (window adaptation) and MCLMC (mclmc_find_L_and_step_size) with the
#    budgets of lambda-hat's own runs, plus a bare jit(vmap(grad)) loop and, on the training
#    target, optax Adam with lambda-hat's steps and learning rate.
# 4. Prints one table: model, sampler, metric (gradients/s, ESS/s, training steps/s), ours,
#    theirs and the ratio ours/theirs. The peers' figures are kept next to the store
#    (peers-f64.json, peers-f32.json), so the table can be printed again without rerunning:
#      /tmp/lh-peers-venv/bin/python scripts/peers/blackjax_llc.py table --store STORE FILE.json…
# On a machine shared with other work the ratios are indicative only; the load is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${QUICK:-0}"
venv="${PEERS_VENV:-/tmp/lh-peers-venv}"
case "$quick" in 0|1) ;; *) echo "bench-peers: QUICK must be 0 or 1, not '$quick'" >&2; exit 2 ;; esac
if [ "$#" -gt 0 ]; then
  echo "usage: [QUICK=1] [PEERS_STORE=DIR/runs] [PEERS_VENV=DIR] scripts/bench-peers.sh" >&2
  exit 2
fi

# The versions this script was written and measured with (CPU wheels).
pins=(jax==0.10.2 jaxlib==0.10.2 blackjax==1.7.1 optax==0.2.8 arviz==0.23.4)

command -v python3 >/dev/null || { echo "bench-peers: python3 not found" >&2; exit 2; }
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating the virtual environment $venv"
  python3 -m venv "$venv" ||
    { echo "bench-peers: python3 -m venv $venv failed (on Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
py="$venv/bin/python"
if ! "$py" -c 'import jax, blackjax, optax, arviz' 2>/dev/null ||
   [ "$("$py" -c 'import jax, blackjax, optax, arviz; print(jax.__version__, blackjax.__version__, optax.__version__, arviz.__version__)')" != "0.10.2 1.7.1 0.2.8 0.23.4" ]; then
  echo "== pip install ${pins[*]} into $venv"
  "$py" -m pip install --quiet --disable-pip-version-check "${pins[@]}" ||
    { echo "bench-peers: pip could not install ${pins[*]} into $venv (network? disk?); nothing was measured" >&2; exit 1; }
fi
"$py" - <<'EOF'
import platform, jax, jaxlib, blackjax, optax, arviz, numpy
print(f"== peers: Python {platform.python_version()}, jax {jax.__version__} (jaxlib {jaxlib.__version__}, "
      f"{jax.default_backend()}), blackjax {blackjax.__version__}, optax {optax.__version__}, "
      f"arviz {arviz.__version__}, numpy {numpy.__version__}")
EOF

if [ -n "${PEERS_STORE:-}" ]; then
  store="$PEERS_STORE"
  [ -d "$store/targets" ] || { echo "bench-peers: PEERS_STORE=$store is not a lambda-hat store (no targets/)" >&2; exit 2; }
else
  export BENCH_DIR="${BENCH_DIR:-/tmp/lh-bench-ess}"
  QUICK="$quick" bash scripts/bench-ess.sh
  store="$BENCH_DIR/runs"
fi

out="$(dirname "$store")"
precisions=$("$py" -c '
import glob, json, sys
seen = {json.load(open(f)).get("precision") for f in glob.glob(sys.argv[1] + "/targets/*/meta.json")}
print(" ".join(p for p in ("f64", "f32") if p in seen))' "$store")
echo "== BlackJAX on $store ($precisions); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
files=()
for prec in $precisions; do
  start=$(date +%s.%N)
  # JAX's and BlackJAX's UserWarnings (e.g. about x64 and tuning) are not ours to act on.
  PYTHONWARNINGS=ignore TF_CPP_MIN_LOG_LEVEL=2 \
    "$py" scripts/peers/blackjax_llc.py sample --store "$store" --precision "$prec" --out "$out/peers-$prec.json"
  printf '   %s: %.0f s\n' "$prec" "$(echo "$(date +%s.%N) - $start" | bc)"
  files+=("$out/peers-$prec.json")
done
echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; above 2, other work slowed these figures)"
"$py" scripts/peers/blackjax_llc.py table --store "$store" "${files[@]}"
