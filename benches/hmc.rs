//! Wall time of whole HMC runs: the `small` preset target (p = 79, n = 1,000), issue 13's
//! `small8` (4 → [8, 8] → 1, p = 121, n = 1,000, 4 chains) and the `base` preset target
//! (p ≈ 10,000, n = 20,000), f64 and f32, chains in parallel on every core.
//!
//! Run with `cargo bench --bench hmc`. The targets are built by the real `build_target` (data,
//! teacher, training) and sampled by the real sampler, as a sweep job does; only training is
//! shortened for the base target (w*'s quality does not change the cost of a gradient).
//! The HMC settings are printed with each figure; the default preset's 2,500 transitions × 10
//! leapfrog steps per chain would take minutes at the base size.
//!
//! small8 on the 2-core Zen 5 VM (load ≈ 1, best of 3): 38,300 gradients/s f64 and 33,900 f32
//! with gemm for every layer (48c7c4e); 61,700–63,400 and 93,300–97,000 with the narrow-layer
//! kernels (two series of 3 runs).

use std::path::Path;
use std::time::Instant;

use lambda_hat::config::presets::PresetDirs;
use lambda_hat::config::schema::{SamplerConfig, TargetConfig};
use lambda_hat::config::{ResolvedTarget, parse_sweep};
use lambda_hat::nn::MlpLoss;
use lambda_hat::numeric::Real;
use lambda_hat::posterior::Posterior;
use lambda_hat::samplers;

const CASES: &[(&str, &str, &str)] = &[
    (
        "small",
        "{ model: small, data: small, seed: 1, overrides: { data: { n_data: 1000 } } }",
        "{ name: hmc, overrides: { chains: 2, warmup: 500, draws: 2000 } }",
    ),
    (
        // Issue 13's small model: 4 → [8, 8] → 1, n = 1,000, 4 chains.
        "small8",
        "{ model: small, data: small, seed: 1, overrides: { model: { widths: [8, 8], target_params: null }, data: { n_data: 1000 } } }",
        "{ name: hmc, overrides: { chains: 4, warmup: 500, draws: 2000, num_integration_steps: 10 } }",
    ),
    (
        "base",
        "{ model: base, data: base, seed: 1, overrides: { training: { steps: 300 } } }",
        "{ name: hmc, overrides: { chains: 2, warmup: 100, draws: 100 } }",
    ),
];

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for (name, target, sampler) in CASES {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        for x64 in [true, false] {
            let yaml = format!(
                "jax_enable_x64: {x64}\ntargets:\n  - {target}\nsamplers:\n  - {sampler}\n"
            );
            let sweep = parse_sweep(
                Path::new("<bench>"),
                &yaml,
                &PresetDirs::for_experiments_file(Path::new("config/x.yaml")),
            )
            .expect("bench sweep is valid");
            let ResolvedTarget {
                config, posterior, ..
            } = &sweep.targets[0];
            if x64 {
                bench::<f64>(name, config, posterior, &sweep.samplers[0]);
            } else {
                bench::<f32>(name, config, posterior, &sweep.samplers[0]);
            }
        }
    }
}

fn bench<F: Real>(
    name: &str,
    cfg: &TargetConfig,
    posterior: &lambda_hat::config::schema::PosteriorConfig,
    sampler: &SamplerConfig,
) {
    let built = lambda_hat::train::build_target::<F>(cfg).expect("target builds");
    let p = built.dims.p;
    let n = built.dims.n;
    let loss = MlpLoss::new(built.student, built.x, built.y).expect("model");
    let post = Posterior::new(&loss, built.w_star, posterior);
    let start = Instant::now();
    let run = samplers::run(sampler, &post, "run_hmc_bench").expect("sampling runs");
    let secs = start.elapsed().as_secs_f64();
    let grads: u64 = run.chains.iter().map(|c| c.grad_evals).sum();
    let (chains, draws) = (run.chains.len(), run.chains[0].llc.len());
    let SamplerConfig::Hmc(h) = sampler else {
        unreachable!("the bench samples with HMC")
    };
    println!(
        "{name:<6} {:<3} p={p:<6} n={n:<6} chains={chains} warmup={} draws={draws} L={}: {secs:8.2} s wall, {grads} gradients, {:.2} ms/gradient/chain, {:.0} gradients/s, {:.1} GFLOP/s",
        F::NAME,
        h.warmup,
        h.num_integration_steps,
        secs * 1e3 * chains as f64 / grads as f64,
        grads as f64 / secs,
        6.0 * n as f64 * p as f64 * grads as f64 / secs / 1e9
    );
}
