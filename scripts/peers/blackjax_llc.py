"""The peer half of scripts/bench-peers.sh: lambda-hat's benchmark targets, sampled with BlackJAX.

Reads a lambda-hat store written by scripts/bench-ess.sh and, for every target of one precision,
rebuilds exactly the posterior lambda-hat sampled, in JAX:

    log p(w) = −nβ·L_n(w) − (γ/2)·‖w − w*‖²,   L_n(w) = (1/n) Σ_i ‖f_w(x_i) − y_i‖²

with X, Y from the target's data.npz, w* from its params.npz (W0, b0, W1, …; W_l is
fan_in × fan_out), the architecture from meta.json (widths, activation, bias, residual
connections between equal-width hidden layers, as ARCHITECTURE.md §5 and src/nn/mlp.rs define
it) and nβ, γ from each run's analysis.json. Then, with the settings of lambda-hat's own run
(chains, warmup, draws, leapfrog steps, target acceptance; MCLMC's tuning budget and energy
variance), it runs

  * BlackJAX HMC with window adaptation (one adaptation per chain, as BlackJAX does it), and
  * BlackJAX MCLMC tuned by blackjax.mclmc_find_L_and_step_size,

every chain started at w* as lambda-hat's are, and records the LLC draws nβ(L_n(w) − L0) with L0
= L_n(w*) evaluated in JAX. Bulk ESS and R-hat come from ArviZ. Each stage is compiled ahead of
time (jax.jit(...).lower(...).compile()), so the times are the sampling alone; compile time is
reported separately. Gradients are counted from the algorithms' definitions: HMC's window
adaptation and sampling take exactly num_integration_steps gradients per transition (plus one
at initialization), MCLMC's isokinetic McLachlan integrator two per step, and its tuner runs
round(frac_tune_k · num_steps) steps in each of its three stages.

For a network affine in its input (a deep linear network) everything runs twice: on all n rows,
as a JAX user would write it, and on the 2·in_dim moment-matched rows lambda-hat itself uses for
such networks (same loss and gradient up to rounding; see moment_rows), so that the comparison
can separate that trick from everything else.

Also: the raw throughput of jit(vmap(grad(log p))) over the run's chains in a compiled loop,
and, for a target built with `finish: none` (bench-ess.sh's training target), optax's Adam with
lambda-hat's steps and learning rate, full batch.

The code uses BlackJAX's public API only (written from its documentation).

  python blackjax_llc.py sample --store RUNS --precision f64|f32 --out FILE.json
  python blackjax_llc.py table --store RUNS FILE.json [FILE.json …]

`sample` must run in its own process per precision: JAX's 64-bit mode is set once, at start.
"""

import argparse
import glob
import json
import math
import os
import sys
import time

import numpy as np

from job_cores import cores_used  # next to this file

NAMES = {(4, (3,), 2): "dln", (4, (8, 8), 1): "small", (32, (62, 62, 62), 1): "base"}
ORDER = {"dln": 0, "small": 1, "base": 2}


def label(meta):
    """The model's short name in the bench tables (dln, small, base), else its architecture."""
    m = meta["model_cfg"]
    widths = tuple(m.get("widths") or ())
    name = NAMES.get((m["in_dim"], widths, m["out_dim"]))
    arch = "-".join(str(w) for w in (m["in_dim"], *widths, m["out_dim"]))
    return name or f"{arch} {m['activation']}"


def load_targets(store, precision=None):
    """(target dir, meta.json, [analysis.json of each run]) for the store's targets."""
    out = []
    for meta_path in sorted(glob.glob(os.path.join(store, "targets", "*", "meta.json"))):
        meta = json.load(open(meta_path))
        if precision and meta.get("precision") != precision:
            continue
        tdir = os.path.dirname(meta_path)
        runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(tdir, "run_*", "analysis.json")))]
        out.append((tdir, meta, runs))
    return out


# ---------------------------------------------------------------------------------------------
# sample
# ---------------------------------------------------------------------------------------------


def sample(args):
    import jax

    jax.config.update("jax_enable_x64", args.precision == "f64")
    import arviz as az
    import blackjax
    import jax.numpy as jnp
    import optax
    from jax.flatten_util import ravel_pytree

    dtype = np.float64 if args.precision == "f64" else np.float32

    def scalar(v):
        """A float from what ArviZ returns for a bare array (a Dataset or a 0-d array)."""
        if hasattr(v, "data_vars"):
            v = v[list(v.data_vars)[0]]
        return float(np.asarray(v))

    def compiled(fn, *example):
        """fn compiled ahead of time for these arguments, and the seconds that took."""
        t = time.perf_counter()
        c = jax.jit(fn).lower(*example).compile()
        return c, time.perf_counter() - t

    def timed(fn, *a):
        """fn(*a), its wall seconds and the CPU seconds of every thread of this process (XLA's
        thread pool included), so the table can say how many cores each side used."""
        t, c = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(fn(*a))
        return out, time.perf_counter() - t, time.process_time() - c

    def make_loss(meta, tdir):
        """[(rows, L_n(w, X, Y) on the flat parameter vector, the data (X, Y, w*))]: all rows, and
        for a network affine in x also its 2·in_dim moment-matched rows (moment_rows).

        The arrays are passed to every compiled function as arguments, never closed over: as
        constants XLA would try to fold products with them at compile time (minutes on base)."""
        m = meta["model_cfg"]
        data = np.load(os.path.join(tdir, "data.npz"))
        X, Y = jnp.asarray(data["X"].astype(dtype)), jnp.asarray(data["Y"].astype(dtype))
        params = np.load(os.path.join(tdir, "params.npz"))
        depth = m["depth"]
        named = {}
        for l in range(depth + 1):
            named[f"W{l:03d}"] = jnp.asarray(params[f"W{l}"].astype(dtype))
            if m.get("bias", True):
                named[f"b{l:03d}"] = jnp.asarray(params[f"b{l}"].astype(dtype))
        flat, unravel = ravel_pytree(named)
        act = {
            "identity": lambda z: z,
            "relu": jax.nn.relu,
            "tanh": jnp.tanh,
            "gelu": lambda z: jax.nn.gelu(z, approximate=True),  # lambda-hat's gelu is the tanh form
        }[m["activation"]]
        skips = [
            m.get("skip_connections", False) and 1 <= l < depth and named[f"W{l:03d}"].shape[0] == named[f"W{l:03d}"].shape[1]
            for l in range(depth + 1)
        ]

        def forward(w, x):
            p = unravel(w)
            a = x
            for l in range(depth + 1):
                z = a @ p[f"W{l:03d}"]
                if f"b{l:03d}" in p:
                    z = z + p[f"b{l:03d}"]
                if l < depth:
                    z = act(z)
                    if skips[l]:
                        z = z + a
                a = z
            return a

        def loss_plus(offset):
            def loss(w, X, Y):
                r = forward(w, X) - Y
                return jnp.mean(jnp.sum(r * r, axis=1)) + offset

            return loss

        variants = [("all", loss_plus(0.0), (X, Y, flat))]
        if m["activation"] == "identity" and X.shape[0] >= 8 * X.shape[1]:
            Z, T, offset = moment_rows(data["X"], data["Y"])
            variants.append((f"{Z.shape[0]}", loss_plus(offset), (jnp.asarray(Z.astype(dtype)), jnp.asarray(T.astype(dtype)), flat)))
        return variants

    key = jax.random.key(0)

    def peer_target(meta, runs, model, tid, n, rows_used, loss, data):
        """The peer rows of one target, its loss evaluated on `rows_used` rows."""
        nonlocal key
        rows = []
        p = data[2].shape[0]
        l0 = float(jax.jit(loss)(data[2], data[0], data[1]))
        base = dict(target_id=tid, model=model, precision=args.precision, p=p, n=n, rows=rows_used)
        print(f"-- {model} ({args.precision}, p = {p}, n = {n:,}, loss over {rows_used} rows): "
              f"L0 = {l0:.6e} in JAX, {meta['metrics']['L0']:.6e} in lambda-hat", flush=True)

        training = meta["training_cfg"]
        if training.get("finish") == "none" and training["optimizer"] == "adam":
            rows.append(dict(base, **adam_bench(jax, jnp, optax, loss, data, meta, compiled, timed)))
            print(f"   optax adam: {rows[-1]['steps']:,} steps in {rows[-1]['wall_s']:.2f} s "
                  f"(compile {rows[-1]['compile_s']:.1f} s), final loss {rows[-1]['final_loss']:.6e}", flush=True)

        for a in runs:
            cfg = a["sampler_cfg"]
            n_beta, gamma = a["n_beta"], a["posterior_cfg"]["gamma"]
            chains = cfg["chains"]

            def posterior(X, Y, w_star, n_beta=n_beta, gamma=gamma):
                """log p and the LLC of a draw, for data passed in as (traced) arguments."""

                def logdensity(w):
                    d = w - w_star
                    return -n_beta * loss(w, X, Y) - 0.5 * gamma * jnp.dot(d, d)

                def llc_of(logd, w):
                    # nβ·L_n(w) recovered from log p: recording a draw costs no forward pass.
                    d = w - w_star
                    return -(logd + 0.5 * gamma * jnp.dot(d, d)) - n_beta * l0

                return logdensity, llc_of

            key, k = jax.random.split(key)
            keys = jax.random.split(k, chains)
            if a["sampler"] == "hmc" and isinstance(cfg.get("num_integration_steps"), int):
                r = hmc_peer(jax, blackjax, posterior, data, cfg, keys, compiled, timed)
            elif a["sampler"] == "mclmc":
                r = mclmc_peer(jax, blackjax, posterior, data, cfg, keys, compiled, timed)
            else:
                continue
            llc = np.asarray(r.pop("llc"), dtype=np.float64)
            ok = np.isfinite(llc).all()
            r.update(
                ours_run_id=a["run_id"],
                llc_mean=float(llc.mean()) if ok else float("nan"),
                ess_bulk=scalar(az.ess(llc, method="bulk")) if ok else 0.0,
                r_hat=scalar(az.rhat(llc)) if ok else float("nan"),
                chains=chains,
                draws=llc.shape[1],
            )
            rows.append(dict(base, **r))
            print(f"   blackjax {r['sampler']}: λ̂ = {r['llc_mean']:.3f}, R-hat {r['r_hat']:.3f}, bulk ESS {r['ess_bulk']:.0f}, "
                  f"{r['grads']:,} gradients in {r['wall_s']:.1f} s on {r['cpu_s'] / r['wall_s']:.2f} cores (compile {r['compile_s']:.1f} s)"
                  f"{'' if ok else ', NON-FINITE draws'}", flush=True)

        if runs:
            rows.append(dict(base, **grad_bench(jax, jnp, loss, data, runs, compiled, timed)))
            print(f"   jit(vmap(grad)) x {rows[-1]['chains']} chains: {rows[-1]['grads_per_s']:,.0f} gradients/s", flush=True)
        return rows

    rows = []
    for tdir, meta, runs in load_targets(args.store, args.precision):
        model = label(meta)
        tid = meta["target_id"]
        n = meta["dims"]["n"]
        for rows_used, loss, data in make_loss(meta, tdir):
            rows.extend(peer_target(meta, runs, model, tid, n, rows_used, loss, data))

    json.dump(rows, open(args.out, "w"), indent=1)


def moment_rows(X, Y):
    """2·d rows (Z, T) and a constant K/n such that for every affine f
    (1/n) Σ_i ‖f(x_i) − y_i‖² = mean_j ‖f(z_j) − t_j‖² + K/n: the construction ARCHITECTURE.md §5
    describes for lambda-hat's deep linear networks, here with numpy's QR, in f64."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    n, d = X.shape
    xbar, ybar = X.mean(0), Y.mean(0)
    Q, R = np.linalg.qr(X - xbar)  # X_c = Q R, R is d × d
    B = Q.T @ (Y - ybar)  # d × out
    K = float(np.sum((Y - ybar) ** 2) - np.sum(B**2))
    c = math.sqrt(d / n)  # Σ over the 2d rows of (z − x̄)(z − x̄)ᵀ·n/(2d) = RᵀR = X_cᵀX_c
    Z = np.concatenate([xbar + c * R, xbar - c * R])
    T = np.concatenate([ybar + c * B, ybar - c * B])
    return Z, T, K / n


def hmc_peer(jax, blackjax, posterior, data, cfg, keys, compiled, timed):
    """BlackJAX HMC, window adaptation then sampling, vmapped over chains."""
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    steps, warmup_n, draws = cfg["num_integration_steps"], cfg["warmup"], cfg["draws"]

    def warm(key, X, Y, w_star):
        logdensity, _ = posterior(X, Y, w_star)
        adapt = blackjax.window_adaptation(
            blackjax.hmc,
            logdensity,
            is_mass_matrix_diagonal=True,
            initial_step_size=cfg.get("step_size") or 1.0,
            target_acceptance_rate=cfg["target_acceptance"],
            adaptation_info_fn=get_filter_adapt_info_fn(),  # keep nothing: memory, not results
            num_integration_steps=steps,
        )
        (state, params), _ = adapt.run(key, w_star, num_steps=warmup_n)
        return state, params["step_size"], params["inverse_mass_matrix"]

    def run(key, state, step_size, imm, X, Y, w_star):
        logdensity, llc_of = posterior(X, Y, w_star)
        kernel = blackjax.hmc(logdensity, step_size, imm, steps)

        def one(s, k):
            s, info = kernel.step(k, s)
            return s, (llc_of(s.logdensity, s.position), info.acceptance_rate, info.is_divergent)

        return jax.lax.scan(one, state, jax.random.split(key, draws))[1]

    shared = (None,) * 3  # the data: the same for every chain
    warm_c, c1 = compiled(jax.vmap(warm, in_axes=(0, *shared)), keys, *data)
    (state, eps, imm), t_warm, cpu_warm = timed(warm_c, keys, *data)
    run_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    run_c, c2 = compiled(jax.vmap(run, in_axes=(0, 0, 0, 0, *shared)), run_keys, state, eps, imm, *data)
    (llc, acc, div), t_run, cpu_run = timed(run_c, run_keys, state, eps, imm, *data)
    chains = keys.shape[0]
    grads = chains * (1 + (warmup_n + draws) * steps)
    return dict(
        sampler="hmc", llc=llc, grads=grads, compile_s=c1 + c2, warmup_s=t_warm, sample_s=t_run,
        wall_s=t_warm + t_run, cpu_s=cpu_warm + cpu_run, acceptance=float(np.mean(acc)), divergences=int(np.sum(div)),
        step_size=[float(e) for e in np.asarray(eps)],
    )


def mclmc_peer(jax, blackjax, posterior, data, cfg, keys, compiled, timed):
    """BlackJAX MCLMC: mclmc_find_L_and_step_size, then sampling, vmapped over chains."""
    integrators = blackjax.mcmc.integrators
    name = cfg.get("integrator", "isokinetic_mclachlan")
    integrator = getattr(integrators, name)
    grads_per_step = {"isokinetic_mclachlan": 2, "isokinetic_leapfrog": 1}[name]
    n_tune, draws = cfg["num_tuning_steps"], cfg["draws"]
    fracs = (cfg["frac_tune1"], cfg["frac_tune2"], cfg["frac_tune3"])

    def tune(key, X, Y, w_star):
        logdensity, _ = posterior(X, Y, w_star)
        k_init, k_tune = jax.random.split(key)
        state = blackjax.mcmc.mclmc.init(position=w_star, logdensity_fn=logdensity, rng_key=k_init)
        kernel = blackjax.mcmc.mclmc.build_kernel(integrator=integrator)
        state, params, _ = blackjax.mclmc_find_L_and_step_size(
            mclmc_kernel=kernel,
            num_steps=n_tune,
            state=state,
            rng_key=k_tune,
            logdensity_fn=logdensity,
            frac_tune1=fracs[0],
            frac_tune2=fracs[1],
            frac_tune3=fracs[2],
            desired_energy_var=cfg["desired_energy_var"],
            trust_in_estimate=cfg["trust_in_estimate"],
            num_effective_samples=cfg["num_effective_samples"],
            diagonal_preconditioning=cfg["diagonal_preconditioning"],
        )
        return state, params.L, params.step_size, params.inverse_mass_matrix

    def run(key, state, L, step_size, imm, X, Y, w_star):
        logdensity, llc_of = posterior(X, Y, w_star)
        alg = blackjax.mclmc(logdensity, L=L, step_size=step_size, integrator=integrator, inverse_mass_matrix=imm)

        def one(s, k):
            s, _ = alg.step(k, s)
            return s, llc_of(s.logdensity, s.position)

        return jax.lax.scan(one, state, jax.random.split(key, draws))[1]

    shared = (None,) * 3  # the data: the same for every chain
    tune_c, c1 = compiled(jax.vmap(tune, in_axes=(0, *shared)), keys, *data)
    (state, L, eps, imm), t_tune, cpu_tune = timed(tune_c, keys, *data)
    run_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    run_c, c2 = compiled(jax.vmap(run, in_axes=(0, 0, 0, 0, 0, *shared)), run_keys, state, L, eps, imm, *data)
    llc, t_run, cpu_run = timed(run_c, run_keys, state, L, eps, imm, *data)
    # The tuner's stages: round(frac · num_steps) steps each; the third only when ≥ 2.
    s1, s2, s3 = (round(n_tune * f) for f in fracs)
    tune_steps = s1 + s2 + (s3 if s3 >= 2 else 0)
    chains = keys.shape[0]
    grads = chains * (1 + grads_per_step * (tune_steps + draws))
    return dict(
        sampler="mclmc", llc=llc, grads=grads, compile_s=c1 + c2, warmup_s=t_tune, sample_s=t_run,
        wall_s=t_tune + t_run, cpu_s=cpu_tune + cpu_run, L=[float(x) for x in np.asarray(L)], step_size=[float(x) for x in np.asarray(eps)],
    )


def grad_bench(jax, jnp, loss, data, runs, compiled, timed):
    """Gradients of L_n per second: jit(vmap(grad)) over the chains, in a compiled loop."""
    chains = max(a["sampler_cfg"].get("chains", 4) for a in runs)
    X, Y, w_star = data
    g = jax.vmap(jax.grad(loss), in_axes=(0, None, None))
    ws = jnp.stack([w_star] * chains)

    def loop(ws, X, Y, k):
        # w moves by a negligible amount each time, so no evaluation can be hoisted or reused.
        return jax.lax.fori_loop(0, k, lambda i, w: w - 1e-30 * g(w, X, Y), ws)

    k, secs = 4, 0.0
    while True:
        c, comp = compiled(lambda w, X, Y: loop(w, X, Y, k), ws, X, Y)
        _, secs, cpu = timed(c, ws, X, Y)
        if secs >= 1.0 or k >= 1 << 20:
            break
        k = int(k * min(64.0, max(2.0, 1.5 / max(secs, 1e-4))))
    return dict(sampler="grad", chains=chains, grads=k * chains, wall_s=secs, cpu_s=cpu, compile_s=comp,
                grads_per_s=k * chains / secs)


def adam_bench(jax, jnp, optax, loss, data, meta, compiled, timed):
    """optax.adam for lambda-hat's step count and learning rate, full batch, from a random start."""
    cfg = meta["training_cfg"]
    steps = int(meta["metrics"]["steps_run"])
    opt = optax.adam(cfg["learning_rate"])  # b1 0.9, b2 0.999, eps 1e-8: lambda-hat's too
    rng = np.random.default_rng(0)
    X, Y, w_star = data
    w0 = jnp.asarray(rng.normal(size=w_star.shape).astype(np.asarray(w_star).dtype) * 0.5)
    grad = jax.grad(loss)

    def train(w, X, Y):
        def body(i, carry):
            w, s = carry
            u, s = opt.update(grad(w, X, Y), s, w)
            return optax.apply_updates(w, u), s

        w, _ = jax.lax.fori_loop(0, steps, body, (w, opt.init(w)))
        return w, loss(w, X, Y)

    c, comp = compiled(train, w0, X, Y)
    (_, final), secs, cpu = timed(c, w0, X, Y)
    return dict(sampler="adam", steps=steps, wall_s=secs, cpu_s=cpu, compile_s=comp, steps_per_s=steps / secs,
                final_loss=float(final))


# ---------------------------------------------------------------------------------------------
# table
# ---------------------------------------------------------------------------------------------


def table(args):
    ours = {}  # (model, precision, sampler) -> analysis.json / meta.json
    for _, meta, runs in load_targets(args.store):
        model, prec = label(meta), meta.get("precision")
        if meta["training_cfg"].get("finish") == "none":
            ours[(model, prec, "adam")] = meta
        for a in runs:
            ours[(model, prec, a["sampler"])] = a
    peers = [r for f in args.peers for r in json.load(open(f))]

    def fmt(x):
        if x is None or (isinstance(x, float) and not math.isfinite(x)):
            return "-"
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"

    print("\n== BlackJAX runs (same targets, posteriors and budgets as lambda-hat's)")
    head = ("model", "prec", "sampler", "λ̂ ours", "λ̂ theirs", "R-hat", "bulk ESS", "grads", "warmup s", "sample s", "compile s")
    rows = []
    def sampler(r, name=None):
        name = name or r["sampler"]
        return name if r.get("rows", "all") == "all" else f"{name}, {r['rows']} rows"

    def rank(r):
        return (ORDER.get(r["model"], 9), r["precision"] != "f64", r.get("rows", "all") != "all",
                ["hmc", "mclmc", "grad", "adam"].index(r["sampler"]))

    for r in sorted(peers, key=rank):
        if r["sampler"] not in ("hmc", "mclmc"):
            continue
        o = ours.get((r["model"], r["precision"], r["sampler"]), {})
        rows.append((r["model"], r["precision"], sampler(r), f"{o.get('llc_mean', float('nan')):.3f}",
                     f"{r['llc_mean']:.3f}", f"{r['r_hat']:.3f}" if r["r_hat"] < 100 else f"{r['r_hat']:.1e}", f"{r['ess_bulk']:.0f}", f"{r['grads']:,}",
                     f"{r['warmup_s']:.1f}", f"{r['sample_s']:.1f}", f"{r['compile_s']:.1f}"))
    print_table(head, rows)

    print("\n== lambda-hat (ours) vs BlackJAX/JAX (theirs); ratio = ours/theirs, above 1 = lambda-hat faster")
    head = ("model", "prec", "sampler", "metric", "ours", "theirs", "ratio", "cores", "note")
    rows = []
    def secs(o, loop, whole):
        """The seconds in our sampler or optimizer loop; older stores recorded only the whole job."""
        return (o.get(loop) or o[whole]) if o else None

    def cores(o, r):
        """Cores each side kept busy, ours/theirs: CPU over wall seconds (ours: the whole job)."""
        if not o:
            return "-"
        ours = (cores_used(args.store, "build_target", o["target_id"]) if "run_id" not in o
                else cores_used(args.store, "run_sampler", f"{o['target_id']}.{o['run_id']}"))
        theirs = r.get("cpu_s") and r["cpu_s"] / r["wall_s"]
        return f"{ours:.1f}/{theirs:.1f}" if ours and theirs else "-"

    for r in sorted(peers, key=rank):
        key = (r["model"], r["precision"])
        note = ""
        if r["sampler"] in ("hmc", "mclmc"):
            o = ours.get(key + (r["sampler"],))
            t = secs(o, "sampling_sec", "walltime_sec")
            pairs = [("grads/s", o and o["grad_evals"] / t, r["grads"] / r["wall_s"]),
                     ("ESS/s", o and o["ess_bulk"] / t, r["ess_bulk"] / r["wall_s"])]
            if o and min(o["ess_bulk"], r["ess_bulk"]) < 100:
                note = "ESS < 100: rate unreliable"
        elif r["sampler"] == "grad":
            o = ours.get(key + ("hmc",))
            pairs = [("grads/s", o and o["grad_evals"] / secs(o, "sampling_sec", "walltime_sec"), r["grads_per_s"])]
            r = dict(r, sampler="bare grad")
        else:
            o = ours.get(key + ("adam",))
            t = o and (o["metrics"].get("training_sec") or o["walltime_sec"])
            pairs = [("train steps/s", o and o["metrics"]["steps_run"] / t, r["steps_per_s"])]
        for metric, a, b in pairs:
            ratio = a / b if a and b else None
            rows.append((r["model"], r["precision"], sampler(r), metric, fmt(a), fmt(b), f"{ratio:.2f}" if ratio else "-",
                         cores(o, r) if metric != "ESS/s" else "", note if metric == "ESS/s" else ""))
    print_table(head, rows)
    print("""
ours: analysis.json's grad_evals and ess_bulk over its sampling_sec (warmup/tuning + sampling,
all chains; not loading, trace or plots); training: meta.json's steps_run over its
metrics.training_sec (the optimizer and its finish, not data generation). Stores written before
those fields existed fall back to the whole job's walltime_sec. theirs: warmup/tuning + sampling,
compiled beforehand (compile time not counted). "bare grad": theirs is jit(vmap(grad)) over the chains in a compiled loop, no sampler;
ours is the gradient rate inside our HMC run. "cores": CPU seconds over wall seconds, ours for
the whole job (from its benchmark file), theirs for the timed loop. lambda-hat evaluates a deep linear network's
full-batch loss on 2·in_dim moment-matched rows (ARCHITECTURE.md §5), the same loss and gradient
as all n rows; the JAX code sums over all n rows as a JAX user writes it, and the rows marked
"…, 2·in_dim rows" give JAX the same moment-matched rows, which isolates the rest. The peer runs one
window adaptation per chain (BlackJAX's way), lambda-hat's chains share one (adaptation: pooled).
On a machine shared with other work the ratios are indicative only.""")


def print_table(head, rows):
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).rjust(n) if i >= 3 else str(x).ljust(n) for i, (x, n) in enumerate(zip(r, w))).rstrip()
    print(line(head))
    print("  ".join("-" * n for n in w))
    for r in rows:
        print(line(r))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample", help="run the BlackJAX peers on one precision's targets")
    s.add_argument("--store", required=True)
    s.add_argument("--precision", choices=["f64", "f32"], required=True)
    s.add_argument("--out", required=True)
    t = sub.add_parser("table", help="print ours vs theirs")
    t.add_argument("--store", required=True)
    t.add_argument("peers", nargs="+")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.store, "targets")):
        sys.exit(f"blackjax_llc: no lambda-hat store at {args.store} (expected {args.store}/targets/); run scripts/bench-ess.sh first")
    sample(args) if args.cmd == "sample" else table(args)


if __name__ == "__main__":
    main()
