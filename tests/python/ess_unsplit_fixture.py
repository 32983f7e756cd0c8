#!/usr/bin/env python3
"""Write tests/fixtures/ess_unsplit.json: ArviZ's ESS of each reference chain, *not* split.

MCLMC tuning's third stage measures the effective sample size of one chain's positions the way
BlackJAX's `effective_sample_size(x[None, :])` does: the chain whole, not cut in halves as
`arviz.ess(method="mean")` cuts it. ArviZ's internal `_ess` on a (1, draws) array is that
estimator (on the chains below the two agree to 1e-3 or better), so `diagnostics::ess_unsplit`
is checked against it. The chains are those of tests/fixtures/arviz_diagnostics.json.

Usage (from the repository root, with ArviZ 0.23.4 installed):
    python3 tests/python/ess_unsplit_fixture.py
"""
import json

import numpy as np
from arviz.stats.diagnostics import _ess

REFERENCE = "tests/fixtures/arviz_diagnostics.json"
OUT = "tests/fixtures/ess_unsplit.json"

with open(REFERENCE) as f:
    cases = json.load(f)["cases"]
out = {
    "source": "ArviZ 0.23.4: arviz.stats.diagnostics._ess(chain[None, :]) for every chain of "
    + REFERENCE + " (tests/python/ess_unsplit_fixture.py)",
    "cases": [
        {"name": c["name"], "ess_unsplit": [float(_ess(np.asarray(ch)[None, :])) for ch in c["chains"]]}
        for c in cases
    ],
}
with open(OUT, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(f"wrote {OUT}: {sum(len(c['ess_unsplit']) for c in out['cases'])} chains")
