#!/usr/bin/env bash
# The test suite, exactly as CI runs it: formatting, lints, docs, unit and integration tests
# (including the real-SLURM tests and the pandas compatibility check), and a quick sampler
# validation.
#
# On a fresh Debian machine run as root it installs what the tests need first: the Python
# packages numpy, pandas and arviz, Debian's graphviz and chromium, and a single-node SLURM cluster
# (scripts/slurm-local.sh start).
# Without root it uses what is there; the SLURM tests then fail loudly if SLURM is missing and
# LAMBDA_HAT_REQUIRE_SLURM=1 (CI sets it), and explain themselves otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! python3 -c 'import numpy, pandas, arviz' 2>/dev/null; then
  step "installing numpy, pandas and arviz (for the pandas and ArviZ compatibility tests)"
  python3 -m pip install --quiet --disable-pip-version-check numpy pandas arviz
fi

if ! command -v dot >/dev/null && [ "$(id -u)" = 0 ]; then
  step "installing graphviz (the --dag and --rulegraph tests render with dot)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
fi

if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then
  step "installing chromium (tests/report_html.rs opens the HTML report in headless Chromium)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ "$(id -u)" = 0 ]; then
  step "starting the local single-node SLURM cluster"
  bash scripts/slurm-local.sh start
  export LAMBDA_HAT_REQUIRE_SLURM="${LAMBDA_HAT_REQUIRE_SLURM:-1}"
fi

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo doc (the maintainers' docs, private items included, without warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items --quiet

step "cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --no-fail-fast -- --test-threads 2 2>&1 | tee "$log" || status=$?
# One closing line with the totals over every test binary (cargo prints one line per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
