#!/usr/bin/env python3
"""Writes an experiments file with N targets x M samplers (for the planning benchmark)."""
import sys

n, m = int(sys.argv[1]), int(sys.argv[2])
print('store_root: "runs-bench"')
print("targets:")
for i in range(n):
    print(f"  - {{ model: small, data: small, seed: {i} }}")
print("samplers:")
for j in range(m):
    print(f"  - {{ name: sgld, overrides: {{ step_size: {1e-7 * (j + 1):.3e} }} }}")
