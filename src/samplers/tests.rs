//! Sampler tests: accuracy against analytic oracles with the default presets, reproducibility,
//! robustness to non-finite losses, config errors, and no allocation in the step loops.
//!
//! Oracles (the models are in `test_models`):
//! * Linear regression, d = 20 correlated inputs, n = 500, β = 1/ln n (nβ ≈ 80): the posterior
//!   is Gaussian and E[llc] = ½ Σ nβhᵢ/(nβhᵢ + γ) exactly ([`regular_expected_llc`]).
//! * Deep linear networks [4,3,2] (λ = 4) and [3,3,3] (λ = 4.5) with a random full-rank teacher
//!   (entries N(0, 1/fan_in)), n = 500 and nβ = 300 (β fixed). The estimator's expectation
//!   approaches λ as nβ grows. At w* the 8 (resp. 9) non-zero Hessian eigenvalues are 0.11–14
//!   (0.04–7.8), so the quadratic approximation ½Σ nβhᵢ/(nβhᵢ + γ) is 3.98 (4.45); long HMC
//!   runs (4 × 12,000 draws, target acceptance 0.9) measure 3.949 ± 0.018 and 4.345 ± 0.027:
//!   at nβ = 300 the expectation is 1.3 % and 3.5 % below λ (the rest of the gap comes from
//!   the curved fibre of equivalent parameters), well inside the tolerances. A larger nβ would
//!   close the gap but widen the ratio between the flat fibre (width 1/√γ = 1) and the
//!   stiffest transverse direction (1/√(nβh) ≈ 0.015), which the samplers must cross within
//!   their default budgets.
//!
//! Tolerances are those of the brief (HMC 3 % regular / 10 % deep linear, MCLMC and SGLD 15 %);
//! each test also requires the Monte Carlo error to be at most a third of its tolerance, so a
//! pass means the estimate is accurate, not just noisy enough to straddle the truth.

use std::time::Instant;

use super::test_models::{DeepLinear, LinReg};
use super::*;
use crate::analysis::{Analysis, HealthChecks, analyze};
use crate::config::schema::{
    Adaptation, BetaMode, HmcConfig, IntegrationSteps, MclmcConfig, NutsConfig, PosteriorConfig,
    SgldConfig, StepSize,
};
use crate::posterior::Rows;
use crate::validate::{aoyagi_deep_linear_llc, regular_expected_llc};

// ------------------------------------------------------------------ helpers

/// A default preset from config/sampler/, exactly as shipped.
fn preset(name: &str) -> SamplerConfig {
    let parsed = match name {
        "hmc" => serde_yaml::from_str::<HmcConfig>(include_str!("../../config/sampler/hmc.yaml"))
            .map(SamplerConfig::Hmc),
        "nuts" => {
            serde_yaml::from_str::<NutsConfig>(include_str!("../../config/sampler/nuts.yaml"))
                .map(SamplerConfig::Nuts)
        }
        "sgld" => {
            serde_yaml::from_str::<SgldConfig>(include_str!("../../config/sampler/sgld.yaml"))
                .map(SamplerConfig::Sgld)
        }
        "mclmc" => {
            serde_yaml::from_str::<MclmcConfig>(include_str!("../../config/sampler/mclmc.yaml"))
                .map(SamplerConfig::Mclmc)
        }
        _ => panic!("no preset {name}"),
    };
    parsed.unwrap_or_else(|e| panic!("preset {name} does not parse: {e}"))
}

/// The preset with the budgets it had before it was sized for singular posteriors (HMC 10 steps
/// at Stan's 0.8, SGLD 20,000 steps, MCLMC 3 × 200 tuning steps and 8,000 draws). On these
/// oracles (a Gaussian posterior, and deep linear networks at γ = 4 that stay near w*) they
/// hold the tolerances below; the presets themselves are checked on the stiff posteriors they
/// are sized for by `validate` (tests/validate.rs). Unoptimized, the full presets would make
/// this suite several times slower.
fn oracle_config(name: &str) -> SamplerConfig {
    let mut cfg = preset(name);
    match &mut cfg {
        SamplerConfig::Hmc(h) => small_hmc_trajectory(h),
        SamplerConfig::Sgld(s) => {
            s.steps = 20_000;
            s.eval_every = 20;
        }
        SamplerConfig::Mclmc(m) => {
            m.num_tuning_steps = 2_000;
            m.draws = 8_000;
        }
        SamplerConfig::Nuts(_) => {}
    }
    cfg
}

/// SGLD's step size when the config fixes one; the old preset's 1e-4 for `auto`, for tests
/// that drive a chain directly (the run-level choice of `auto` is `samplers::run`'s).
fn fixed_step(s: &SgldConfig) -> f64 {
    match s.step_size {
        StepSize::Fixed(x) => x,
        StepSize::Auto => 1e-4,
    }
}

const LINREG_N: usize = 500;
const LINREG_D: usize = 20;
const DLN_N: usize = 500;
const DLN_N_BETA: f64 = 300.0;

fn dln_posterior_config() -> PosteriorConfig {
    PosteriorConfig {
        beta_mode: BetaMode::Fixed,
        beta0: DLN_N_BETA / DLN_N as f64,
        gamma: 1.0,
    }
}

fn estimate<F: Real, M: LossModel<F>>(cfg: &SamplerConfig, post: &Posterior<'_, F, M>) -> Analysis {
    let run = run(cfg, post, "run_test_0001").expect("sampler runs");
    analyze(&run, &HealthChecks::default())
}

/// Asserts |estimate/truth − 1| < tol, that the Monte Carlo error is small enough for the
/// comparison to mean something, and that at most `max_divergent` of the draws diverged;
/// prints the numbers (visible with --nocapture).
fn check_accuracy(
    label: &str,
    a: &Analysis,
    truth: f64,
    tol: f64,
    max_divergent: f64,
    started: Instant,
) {
    let rel = a.llc_mean / truth - 1.0;
    eprintln!(
        "{label}: estimate {:.4} ± {:.4} (sem), truth {truth:.4}, error {:+.2} %, ess {:.0}, \
         r_hat {:.3}, acceptance {:?}, divergences {}, grad evals {}, {:.1} s",
        a.llc_mean,
        a.llc_sem,
        100.0 * rel,
        a.ess,
        a.r_hat,
        a.acceptance_rate,
        a.divergences,
        a.grad_evals,
        started.elapsed().as_secs_f64()
    );
    assert!(
        rel.abs() < tol,
        "{label}: relative error {rel:+.4} exceeds {tol}"
    );
    assert!(
        a.llc_sem < tol * truth / 3.0,
        "{label}: sem {} too large to test a {tol} tolerance",
        a.llc_sem
    );
    let draws = (a.chains * a.draws) as f64;
    assert!(
        a.divergences as f64 <= max_divergent * draws,
        "{label}: {:?}",
        a.warnings
    );
}

fn check_regular(name: &str, tol: f64) -> Analysis {
    let started = Instant::now();
    let prob = LinReg::<f64>::problem(LINREG_N, LINREG_D, 0.5, 11);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let truth = regular_expected_llc(&prob.hessian_eigs, post.n_beta, post.gamma);
    let a = estimate(&oracle_config(name), &post);
    // A Gaussian posterior has no region a well-adapted step size cannot handle.
    check_accuracy(
        &format!("{name} linear regression"),
        &a,
        truth,
        tol,
        0.0,
        started,
    );
    a
}

fn check_deep_linear(name: &str, tol: f64) -> Vec<Analysis> {
    let mut out = Vec::new();
    for (widths, seed) in [([4usize, 3, 2], 21u64), ([3, 3, 3], 22)] {
        let started = Instant::now();
        let rank = *widths.iter().min().expect("non-empty");
        let truth = aoyagi_deep_linear_llc(&widths, rank);
        let prob = DeepLinear::<f64>::problem(&widths, DLN_N, 0.5, seed);
        let post = Posterior::new(&prob.model, prob.w_star.clone(), &dln_posterior_config());
        let a = estimate(&oracle_config(name), &post);
        // The deep linear posterior's curvature varies along the fibre of equivalent
        // parameters, so a global step size may diverge in its stiffer parts: HMC reports a
        // few (1–3 % of the draws here). That is a correct diagnosis, not a bug.
        check_accuracy(
            &format!("{name} deep linear {widths:?}"),
            &a,
            truth,
            tol,
            0.05,
            started,
        );
        out.push(a);
    }
    out
}

// ------------------------------------------------------------------ oracles

#[test]
fn hmc_matches_the_regular_oracle_and_adapts_acceptance() {
    let a = check_regular("hmc", 0.03);
    let target = match oracle_config("hmc") {
        SamplerConfig::Hmc(h) => h.target_acceptance,
        _ => unreachable!(),
    };
    let acc = a.acceptance_rate.expect("HMC reports acceptance");
    assert!(
        (acc - target).abs() < 0.05,
        "acceptance {acc} vs target {target}"
    );
}

#[test]
fn hmc_matches_aoyagi_on_deep_linear_networks() {
    // Acceptance is not checked here: at γ = 1 these posteriors reach stiff parts of the fibre
    // of equivalent parameters, where a run's acceptance wanders (src/validate/cases.rs).
    // `lambda-hat validate` judges it on deep linear networks localized with γ = 4.
    check_deep_linear("hmc", 0.10);
}

#[test]
fn nuts_matches_the_regular_oracle_and_adapts_acceptance() {
    let started = Instant::now();
    let prob = LinReg::<f64>::problem(LINREG_N, LINREG_D, 0.5, 11);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let truth = regular_expected_llc(&prob.hessian_eigs, post.n_beta, post.gamma);
    let cfg = preset("nuts");
    let a = estimate(&cfg, &post);
    // The tolerance is the run's own Monte Carlo error: 4 sem (a correct sampler misses it with
    // probability ~6e-5 if the estimate is normal with that sem). The sem must be below 1 % of
    // the truth so that the comparison has power: a bias above 4 % cannot pass.
    let sem_tol = 4.0 * a.llc_sem;
    check_accuracy(
        "nuts linear regression",
        &a,
        truth,
        sem_tol / truth,
        0.0,
        started,
    );
    assert!(a.llc_sem < 0.01 * truth, "sem {}", a.llc_sem);
    // No deep linear test here: at γ = 1 NUTS's trees reach depth 7–8 on those posteriors
    // (~220 gradients per draw, minutes per case); `lambda-hat validate` checks it at γ = 4.
    let target = match cfg {
        SamplerConfig::Nuts(n) => n.target_acceptance,
        _ => unreachable!(),
    };
    // The brief's bar for step-size adaptation, as for HMC.
    let acc = a.acceptance_rate.expect("NUTS reports acceptance");
    assert!(
        (acc - target).abs() < 0.05,
        "acceptance {acc} vs target {target}"
    );
}

#[test]
fn mclmc_matches_the_regular_oracle() {
    check_regular("mclmc", 0.15);
}

#[test]
fn mclmc_matches_aoyagi_on_deep_linear_networks() {
    check_deep_linear("mclmc", 0.15);
}

#[test]
fn sgld_matches_the_regular_oracle() {
    let a = check_regular("sgld", 0.15);
    // The preset's step is small for this posterior: a MALA correction would accept nearly all.
    assert!(a.acceptance_rate.expect("SGLD reports the diagnostic") > 0.9);
}

#[test]
fn sgld_matches_aoyagi_on_deep_linear_networks() {
    check_deep_linear("sgld", 0.15);
}

#[test]
fn f32_estimates_match_the_regular_oracle() {
    // The same oracle in single precision: L − L0 ≈ 0.1 against L ≈ 0.25 leaves f32 ~6
    // significant digits, so the f64 tolerances apply unchanged.
    let prob = LinReg::<f32>::problem(LINREG_N, LINREG_D, 0.5, 11);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let truth = regular_expected_llc(&prob.hessian_eigs, post.n_beta.f64(), post.gamma.f64());
    for (name, tol) in [("hmc", 0.03), ("mclmc", 0.15), ("sgld", 0.15)] {
        let started = Instant::now();
        let a = estimate(&oracle_config(name), &post);
        check_accuracy(
            &format!("{name} f32 linear regression"),
            &a,
            truth,
            tol,
            0.0,
            started,
        );
    }
}

// ------------------------------------------------------------------ reproducibility

/// The presets with budgets cut down for tests that do not measure accuracy.
/// HMC twice: pooled warmup long enough for calibration windows, and per-chain warmup; NUTS
/// pooled.
fn small_configs() -> Vec<SamplerConfig> {
    let mut out = Vec::new();
    for name in ["hmc", "hmc", "nuts", "sgld", "mclmc"] {
        let mut cfg = preset(name);
        let per_chain_hmc = name == "hmc" && !out.is_empty();
        match &mut cfg {
            SamplerConfig::Hmc(h) if per_chain_hmc => {
                h.adaptation = Adaptation::PerChain;
                h.warmup = 200;
                h.draws = 40;
                small_hmc_trajectory(h);
            }
            SamplerConfig::Hmc(h) => {
                h.warmup = 200;
                h.draws = 40;
                small_hmc_trajectory(h);
            }
            SamplerConfig::Nuts(n) => {
                n.warmup = 200;
                n.draws = 40;
            }
            SamplerConfig::Sgld(s) => {
                // The old preset's fixed step: these tests compare traces at a known step.
                s.step_size = StepSize::Fixed(1e-4);
                s.batch_size = Some(32);
                s.warmup = 100;
                s.steps = 400;
            }
            SamplerConfig::Mclmc(m) => {
                m.num_tuning_steps = 200;
                m.draws = 50;
            }
        }
        out.push(cfg);
    }
    out
}

/// The first of [`small_configs`] named `name`.
/// The trajectory these tests were written against (the preset's before it moved to 50 steps
/// at 0.99 for stiff posteriors): 10 steps at Stan's 0.8, five times cheaper, and a step that
/// still makes a tight `max_energy_error` flag most transitions.
fn small_hmc_trajectory(h: &mut HmcConfig) {
    h.num_integration_steps = IntegrationSteps::Fixed(10);
    h.target_acceptance = 0.8;
}

fn small_config(name: &str) -> SamplerConfig {
    small_configs()
        .into_iter()
        .find(|c| c.name() == name)
        .unwrap_or_else(|| panic!("no small config {name}"))
}

/// Bitwise equality of two runs (f64::to_bits, so NaN and ±0 are compared exactly too).
fn same_bits(a: &SamplerRun, b: &SamplerRun) -> bool {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    a.chains.len() == b.chains.len()
        && a.chains.iter().zip(&b.chains).all(|(x, y)| {
            bits(&x.llc) == bits(&y.llc)
                && bits(&x.loss) == bits(&y.loss)
                && x.grad_evals == y.grad_evals
                && x.stats.len() == y.stats.len()
                && x.stats
                    .iter()
                    .zip(&y.stats)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && bits(v1) == bits(v2))
                && x.tuned.keys().eq(y.tuned.keys())
                && x.tuned
                    .values()
                    .zip(y.tuned.values())
                    .all(|(p, q)| p.to_bits() == q.to_bits())
        })
}

fn run_in_pool<F: Real, M: LossModel<F>>(
    threads: usize,
    cfg: &SamplerConfig,
    post: &Posterior<'_, F, M>,
    id: &str,
) -> SamplerRun {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| run(cfg, post, id)).expect("sampler runs")
}

fn check_reproducible<F: Real>() {
    let prob = LinReg::<F>::problem(100, 5, 0.5, 5);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    for cfg in small_configs() {
        let one = run_in_pool(1, &cfg, &post, "run_a");
        let three = run_in_pool(3, &cfg, &post, "run_a");
        assert!(
            same_bits(&one, &three),
            "{} {}: thread count changed the trace",
            cfg.name(),
            F::NAME
        );
        assert_eq!(one.chains.len(), cfg.chains());
        assert!(one.chains.iter().all(|c| !c.llc.is_empty()));
        let other = run_in_pool(3, &cfg, &post, "run_b");
        assert_ne!(
            one.chains[0].llc,
            other.chains[0].llc,
            "{}: a different run id must give a different trace",
            cfg.name()
        );
        // Chains of one run are independent streams, not copies.
        assert_ne!(one.chains[0].llc, one.chains[1].llc, "{}", cfg.name());
    }
}

/// The small configs run every stage (warmup, tuning), so their traces carry every statistic.
#[test]
fn each_sampler_records_the_statistics_its_registry_entry_names() {
    let prob = LinReg::<f64>::problem(100, 5, 0.5, 5);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    for cfg in small_configs() {
        let run = run_in_pool(2, &cfg, &post, "run_stats");
        let want: std::collections::BTreeSet<&str> = cfg.kind().stats().iter().copied().collect();
        for chain in &run.chains {
            let got: std::collections::BTreeSet<&str> =
                chain.stats.keys().map(String::as_str).collect();
            assert_eq!(got, want, "{}", cfg.name());
        }
    }
}

#[test]
fn traces_are_bit_identical_whatever_the_thread_count_f64() {
    check_reproducible::<f64>();
}

#[test]
fn traces_are_bit_identical_whatever_the_thread_count_f32() {
    check_reproducible::<f32>();
}

#[test]
fn pooled_warmup_gives_every_chain_one_step_size_and_metric() {
    let prob = LinReg::<f64>::problem(200, 5, 0.5, 7);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut cfg = match preset("hmc") {
        SamplerConfig::Hmc(h) => h,
        _ => unreachable!(),
    };
    cfg.warmup = 300;
    cfg.draws = 20;
    let tuned = |adaptation| {
        let h = HmcConfig {
            adaptation,
            ..cfg.clone()
        };
        let run = run(&SamplerConfig::Hmc(h), &post, "run_pool").expect("sampler runs");
        let keys = ["step_size", "inv_mass_min", "inv_mass_max"];
        run.chains
            .iter()
            .map(|c| keys.map(|k| c.tuned[k]))
            .collect::<Vec<_>>()
    };
    let pooled = tuned(Adaptation::Pooled);
    assert!(pooled.iter().all(|t| *t == pooled[0]), "{pooled:?}");
    // Alone, each chain's noise gives it its own step size and variances.
    let alone = tuned(Adaptation::PerChain);
    assert!(alone.iter().skip(1).all(|t| *t != alone[0]), "{alone:?}");
}

// ------------------------------------------------------------------ robustness

/// Wraps a model so that the loss (and gradient) is NaN wherever w[0] > w*[0] + `edge`: a
/// stand-in for a network whose loss overflows in part of the posterior.
struct NanBeyond<'a, M> {
    inner: &'a M,
    centre: f64,
    edge: f64,
}

impl<F: Real, M: LossModel<F>> LossModel<F> for NanBeyond<'_, M> {
    type Workspace = M::Workspace;

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn n_data(&self) -> usize {
        self.inner.n_data()
    }

    fn workspace(&self, max_rows: usize) -> Self::Workspace {
        self.inner.workspace(max_rows)
    }

    fn loss(&self, w: &[F], rows: Rows<'_>, ws: &mut Self::Workspace) -> F {
        if w[0].f64() > self.centre + self.edge {
            return F::nan();
        }
        self.inner.loss(w, rows, ws)
    }

    fn loss_grad(&self, w: &[F], rows: Rows<'_>, grad: &mut [F], ws: &mut Self::Workspace) -> F {
        let l = self.inner.loss_grad(w, rows, grad, ws);
        if w[0].f64() > self.centre + self.edge {
            grad.iter_mut().for_each(|g| *g = F::nan());
            return F::nan();
        }
        l
    }
}

#[test]
fn non_finite_losses_are_reported_and_never_recorded() {
    let prob = LinReg::<f64>::problem(100, 5, 0.5, 6);
    // The posterior sd of w[0] is ~0.1 here: the chains reach the NaN region often.
    let model = NanBeyond {
        inner: &prob.model,
        centre: prob.w_star[0],
        edge: 0.05,
    };
    let post = Posterior::new(&model, prob.w_star.clone(), &PosteriorConfig::default());
    for cfg in small_configs() {
        let run = run(&cfg, &post, "run_nan").expect("a NaN region is not an error");
        let a = analyze(&run, &HealthChecks::default());
        assert!(
            a.warnings.iter().any(|w| w.contains("not finite")),
            "{}: {:?}",
            cfg.name(),
            a.warnings
        );
        assert!(a.divergences > 0, "{}", cfg.name());
        for c in &run.chains {
            assert!(
                c.llc.iter().all(|x| x.is_finite()),
                "{}: NaN recorded",
                cfg.name()
            );
        }
    }
}

#[test]
fn config_and_posterior_errors_are_reported_not_panicked() {
    let prob = LinReg::<f64>::problem(50, 3, 0.5, 7);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut bad = preset("hmc");
    if let SamplerConfig::Hmc(h) = &mut bad {
        h.chains = 0;
        h.step_size = -1.0;
    }
    let err = run(&bad, &post, "r").expect_err("invalid config");
    assert!(matches!(err, SamplerError::InvalidConfig(_)));
    let text = err.to_string();
    assert!(
        text.contains("sampler.chains") && text.contains("sampler.step_size"),
        "{text}"
    );

    let mut short = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    short.w_star.pop();
    let err = run(&preset("sgld"), &short, "r").expect_err("w* too short");
    assert!(matches!(
        err,
        SamplerError::DimensionMismatch { w_star: 2, dim: 3 }
    ));

    let mut broken = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    broken.l0 = f64::NAN;
    let err = run(&preset("mclmc"), &broken, "r").expect_err("NaN L0");
    assert!(matches!(err, SamplerError::NonFiniteStart { .. }));

    let tiny = LinReg::<f64>::problem(20, 1, 0.5, 8);
    let post1 = Posterior::new(
        &tiny.model,
        tiny.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let err = run(&preset("mclmc"), &post1, "r").expect_err("1-d MCLMC");
    assert!(matches!(err, SamplerError::TooFewParameters(1)));
}

// ------------------------------------------------------------------ sampler-specific behaviour

#[test]
fn hmc_reports_divergences() {
    let prob = LinReg::<f64>::problem(100, 5, 0.5, 9);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut cfg = small_config("hmc");
    if let SamplerConfig::Hmc(h) = &mut cfg {
        // Any energy error above 1e-12 counts: essentially every transition diverges.
        h.max_energy_error = 1e-12;
    }
    let run = run(&cfg, &post, "run_div").expect("runs");
    let a = analyze(&run, &HealthChecks::default());
    assert!(
        a.divergences as usize > a.chains * a.draws / 2,
        "{}",
        a.divergences
    );
    assert!(a.warnings.iter().any(|w| w.contains("divergent")));
    let div = &run.chains[0].stats["diverging"];
    assert_eq!(div.len(), a.draws);
    assert_eq!(div.iter().sum::<f64>() as u64, run.chains[0].divergences);
}

/// The small NUTS config (pooled warmup 200, 40 draws) on a small Gaussian posterior.
fn small_nuts(f: impl Fn(&mut NutsConfig)) -> (SamplerRun, Analysis) {
    let prob = LinReg::<f64>::problem(100, 5, 0.5, 9);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut cfg = match small_config("nuts") {
        SamplerConfig::Nuts(n) => n,
        _ => unreachable!(),
    };
    f(&mut cfg);
    let run = run(&SamplerConfig::Nuts(cfg), &post, "run_nuts").expect("runs");
    let a = analyze(&run, &HealthChecks::default());
    (run, a)
}

#[test]
fn nuts_is_deterministic_per_run_id_and_chain() {
    let (one, _) = small_nuts(|_| {});
    let (two, _) = small_nuts(|_| {});
    assert!(same_bits(&one, &two), "same run id, same config: same bits");
    // Chains differ by their RNG only (same start, same pooled step size and metric).
    assert_ne!(one.chains[0].llc, one.chains[1].llc);
    assert_ne!(
        one.chains[0].stats["n_leapfrog"],
        one.chains[1].stats["n_leapfrog"]
    );
    let c = &one.chains[0];
    for key in [
        "acceptance",
        "energy",
        "energy_error",
        "step_size",
        "diverging",
        "tree_depth",
        "n_leapfrog",
    ] {
        assert_eq!(c.stats[key].len(), c.llc.len(), "{key}");
    }
    assert_eq!(c.stats["warmup_acceptance"].len(), 200);
    // Every gradient is counted: the one at w*, the step-size searches and every leapfrog step
    // of the draws (n_leapfrog) and of warmup, so the total exceeds the draws' own.
    let draws: f64 = c.stats["n_leapfrog"].iter().sum();
    assert!(c.grad_evals as f64 > draws + 200.0, "{}", c.grad_evals);
    for k in ["step_size", "inv_mass_min", "inv_mass_max"] {
        assert!(c.tuned[k] > 0.0, "{k}");
    }
}

#[test]
fn nuts_with_a_huge_fixed_step_diverges_on_every_draw() {
    // ε = 1e3 on a posterior whose widths are ~0.1: the first leapfrog step lands ~1e4 widths
    // away, where the energy error is far above 1000. Every transition must say so: this is
    // how stuck chains are detected. (The metric stays the identity: a metric adapted on a
    // chain that never moved would shrink the steps by its regularization floor.)
    let prob = LinReg::<f64>::problem(100, 5, 0.5, 9);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut cfg = match small_config("nuts") {
        SamplerConfig::Nuts(n) => n,
        _ => unreachable!(),
    };
    cfg.adapt_step_size = false;
    cfg.adapt_mass_matrix = false;
    cfg.step_size = 1e3;
    let cfg = SamplerConfig::Nuts(cfg);
    // `run` refuses such a run (`guard`: stuck, however short): the chains themselves first.
    let rngs = (0..cfg.chains())
        .map(|c| chain_rng("run_nuts", c))
        .collect();
    let chains = cfg.run_chains(&post, rngs, "run_nuts").expect("chains run");
    let run = SamplerRun {
        chains,
        warnings: Vec::new(),
    };
    let a = analyze(&run, &HealthChecks::default());
    assert_eq!(a.divergences as usize, a.chains * a.draws, "{a:?}");
    match super::run(&cfg, &post, "run_nuts").expect_err("stuck") {
        SamplerError::Stuck {
            diverged,
            transitions,
            ..
        } => assert_eq!((diverged, transitions), (a.draws as u64, a.draws)),
        other => panic!("expected Stuck, got {other:?}"),
    }
    for c in &run.chains {
        assert!(c.stats["diverging"].iter().all(|&d| d == 1.0));
        // The first leapfrog step diverges: the first doubling is tried (depth 1, Stan's
        // count) and rejected.
        assert!(c.stats["n_leapfrog"].iter().all(|&n| n == 1.0));
        assert!(c.stats["tree_depth"].iter().all(|&d| d == 1.0));
        assert_eq!(c.tuned["step_size"], 1e3);
    }
    assert!(a.warnings.iter().any(|w| w.contains("divergent")));
}

#[test]
fn nuts_max_tree_depth_bounds_the_trajectory() {
    for depth in [1usize, 3] {
        // A tiny fixed step cannot turn within 2^3 steps, so the bound is what stops the tree.
        let (run, _) = small_nuts(|n| {
            n.max_tree_depth = depth;
            n.adapt_step_size = false;
            n.step_size = 1e-4;
        });
        let bound = ((1usize << depth) - 1) as f64;
        for c in &run.chains {
            let n = &c.stats["n_leapfrog"];
            assert!(n.iter().all(|&x| x >= 1.0 && x <= bound), "{n:?}");
            assert!(n.iter().all(|&x| x == bound), "{n:?}");
            assert!(c.stats["tree_depth"].iter().all(|&d| d == depth as f64));
        }
    }
    // And the preset's adapted step stays well inside depth 10 on a Gaussian, every draw
    // within the 2^depth − 1 gradients of its recorded depth (Stan's and ArviZ's convention).
    let (run, _) = small_nuts(|_| {});
    for c in &run.chains {
        assert!(c.stats["n_leapfrog"].iter().all(|&x| x <= 1023.0));
        for (&n, &d) in c.stats["n_leapfrog"].iter().zip(&c.stats["tree_depth"]) {
            assert!(
                d >= 1.0 && n <= 2f64.powf(d) - 1.0,
                "{n} gradients at depth {d}"
            );
        }
    }
}

#[test]
fn nuts_config_is_validated() {
    let prob = LinReg::<f64>::problem(50, 3, 0.5, 7);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    for bad_depth in [0usize, 16] {
        let mut cfg = preset("nuts");
        if let SamplerConfig::Nuts(n) = &mut cfg {
            n.max_tree_depth = bad_depth;
        }
        let err = run(&cfg, &post, "r").expect_err("invalid depth");
        assert!(err.to_string().contains("max_tree_depth"), "{err}");
    }
}

#[test]
fn sgld_mala_diagnostic_falls_when_the_step_is_too_large() {
    let prob = LinReg::<f64>::problem(LINREG_N, LINREG_D, 0.5, 11);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let accept = |eps: f64| {
        let mut cfg = preset("sgld");
        if let SamplerConfig::Sgld(s) = &mut cfg {
            s.step_size = StepSize::Fixed(eps);
            s.warmup = 500;
            s.steps = 2000;
        }
        let a = analyze(
            &run(&cfg, &post, "run_mala").expect("runs"),
            &HealthChecks::default(),
        );
        a.acceptance_rate.expect("diagnostic computed")
    };
    // nβ·h_max ≈ 300 here: ε = 1e-4 is a small step (ε·λ_max ≈ 0.03), ε = 6e-3 a large one
    // (≈ 1.8, stable below 4 but with a discretization error a correction would often reject).
    let (small, large) = (accept(1e-4), accept(6e-3));
    assert!(small > 0.95, "{small}");
    assert!(large < 0.85, "{large}");
}

#[test]
fn sgld_preconditioner_scales_drift_and_noise_consistently() {
    let prob = LinReg::<f64>::problem(200, 5, 0.5, 10);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let base = match small_config("sgld") {
        SamplerConfig::Sgld(s) => s,
        _ => unreachable!(),
    };
    let with = |f: &dyn Fn(&mut SgldConfig)| {
        let mut s = base.clone();
        f(&mut s);
        run(&SamplerConfig::Sgld(s), &post, "run_pre").expect("runs")
    };
    // precond_eps = 1e4 dwarfs √v̂ (≲ 10 here), so P ≈ 1e-4 (1 − √v̂·1e-4): with the step
    // size scaled up by 1e4, ε·P equals vanilla SGLD's ε to within ~1e-3 relative. If the
    // noise were not scaled by √P (or the drift by P) the traces would differ by orders of
    // magnitude. The RNG streams are identical, so the traces must agree closely.
    let vanilla = with(&|_| {});
    let eps = fixed_step(&base);
    let nearly_constant = with(&|s| {
        s.precond = crate::config::schema::Precond::Rmsprop;
        s.precond_eps = 1e4;
        s.step_size = StepSize::Fixed(eps * 1e4);
    });
    for (a, b) in vanilla.chains[0]
        .llc
        .iter()
        .zip(&nearly_constant.chains[0].llc)
    {
        // llc ≈ 2.5 ± 1.6; a 1e-3 relative step change moves it by far less than 0.05.
        assert!((a - b).abs() < 0.05, "{a} vs {b}");
    }
    // The localization's relaxation times count ε·P, not ε: γ·ε·steps/2 without a
    // preconditioner (γ = 1 here), and the same within P's ~1e-3 spread with it.
    let gamma = PosteriorConfig::default().gamma;
    let relaxations = |r: &SamplerRun| r.chains[0].tuned["localization_relaxations"];
    let expected = gamma * eps * base.steps as f64 / 2.0;
    assert!((relaxations(&vanilla) - expected).abs() <= 1e-12 * expected);
    let ratio = relaxations(&nearly_constant) / expected;
    assert!((0.99..=1.0).contains(&ratio), "{ratio}");
    // Adam with β1 = 0 has m̂ = ĝ exactly, so it must reproduce RMSprop bit for bit.
    let rms = with(&|s| s.precond = crate::config::schema::Precond::Rmsprop);
    let adam0 = with(&|s| {
        s.precond = crate::config::schema::Precond::Adam;
        s.precond_beta1 = 0.0;
    });
    assert!(same_bits(&rms, &adam0));
}

#[test]
fn mclmc_with_given_l_and_step_size_skips_tuning() {
    let prob = LinReg::<f64>::problem(100, 5, 0.5, 12);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut cfg = small_config("mclmc");
    if let SamplerConfig::Mclmc(m) = &mut cfg {
        m.l = Some(0.7);
        m.step_size = Some(0.05);
    }
    let run = run(&cfg, &post, "run_fixed").expect("runs");
    let c = &run.chains[0];
    // One gradient at w*, then 2 per McLachlan step; no curvature probe, no tuning.
    assert_eq!(c.grad_evals, 1 + 2 * 50);
    assert_eq!(c.tuned["L"], 0.7);
    assert_eq!(c.tuned["step_size"], 0.05);
    assert!(!c.tuned.contains_key("curvature"));
    assert!(!c.stats.contains_key("tuning_step_size"));
}

// ------------------------------------------------------------------ no allocation per step

/// A global allocator that counts allocations per thread, so a test can check that a chain's
/// allocations do not grow with its number of steps. Only in this crate's unit-test binary.
mod counting_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    fn bump() {
        // try_with: never panic inside the allocator, even during thread teardown.
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }

    pub struct Counting;

    // SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
    // counter is a thread-local Cell (no allocation, no locking).
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            bump();
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            bump();
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            bump();
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// Allocations made by the current thread so far.
    pub fn allocations() -> u64 {
        ALLOCATIONS.with(|c| c.get())
    }
}

/// Allocations one chain makes on this thread (the chain runs here, not on rayon's pool).
fn chain_allocations(cfg: &SamplerConfig, post: &Posterior<'_, f64, LinReg<f64>>) -> u64 {
    let mut rng = chain_rng("run_alloc", 0);
    let before = counting_alloc::allocations();
    let trace = match cfg {
        SamplerConfig::Hmc(h) => hmc::run_chain(h, post, &mut rng, 0),
        SamplerConfig::Nuts(n) => nuts::run_chain(n, post, &mut rng, 0),
        SamplerConfig::Sgld(s) => {
            sgld::run_chain(s, post, fixed_step(s), &mut rng, 0).expect("runs")
        }
        SamplerConfig::Mclmc(m) => mclmc::run_chain(m, post, &mut rng, 0),
    };
    let used = counting_alloc::allocations() - before;
    drop(trace);
    used
}

#[test]
fn step_loops_do_not_allocate() {
    let prob = LinReg::<f64>::problem(100, 5, 0.5, 13);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    for cfg in small_configs() {
        // Doubling the sampling length must not add a single allocation: everything a step
        // needs is allocated before the loop, with the final capacity.
        let mut longer = cfg.clone();
        match &mut longer {
            SamplerConfig::Hmc(h) => h.draws *= 2,
            SamplerConfig::Nuts(n) => n.draws *= 2,
            SamplerConfig::Sgld(s) => s.steps *= 2,
            SamplerConfig::Mclmc(m) => m.draws *= 2,
        }
        let (a, b) = (
            chain_allocations(&cfg, &post),
            chain_allocations(&longer, &post),
        );
        assert_eq!(
            a,
            b,
            "{}: {a} allocations for n steps, {b} for 2n",
            cfg.name()
        );
    }
}

// ------------------------------------------------------------------ no garbage as a result

/// A SGLD step far beyond stability (ε·a ≈ 300 on this posterior, stable below 4) makes the
/// chain explode; it is restarted with steps ten times smaller until ε·a ≈ 0.3, and the run
/// reports that instead of the exploded draws.
#[test]
fn sgld_recovers_from_a_huge_step_by_restarting_smaller() {
    let prob = LinReg::<f64>::problem(LINREG_N, LINREG_D, 0.5, 11);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut cfg = small_config("sgld");
    if let SamplerConfig::Sgld(s) = &mut cfg {
        s.step_size = StepSize::Fixed(1.0);
    }
    let run = run(&cfg, &post, "run_huge_sgld").expect("recovers");
    let limit = exploded_llc_limit(post.dim());
    for c in &run.chains {
        assert!(c.llc.iter().all(|x| x.is_finite() && *x <= limit));
        assert!(c.tuned["restarts"] >= 1.0, "{:?}", c.tuned);
        assert!(c.tuned["step_size"] < 1.0);
        assert!(
            c.warnings.iter().any(|w| w.contains("restarted")),
            "{:?}",
            c.warnings
        );
    }
    let a = analyze(&run, &HealthChecks::default());
    assert!(
        !a.warnings.is_empty(),
        "a restarted run is not reported clean"
    );
}

/// The stiffness check measures ε·(nβ·λ_max + γ) where the chains go: on a quadratic loss the
/// Hessian is the same everywhere, so it is 0.1 at the auto step (by its construction) and five
/// times that at five times the step, where the run is warned.
#[test]
fn sgld_stiffness_check_measures_the_step_against_the_curvature_the_chains_met() {
    let prob = LinReg::<f64>::problem(LINREG_N, LINREG_D, 0.5, 11);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut cfg = small_config("sgld");
    if let SamplerConfig::Sgld(s) = &mut cfg {
        s.step_size = StepSize::Auto;
    }
    let auto = run(&cfg, &post, "run_stiff").expect("runs");
    // Power iteration from below: within 1 % after 50 iterations (sgld_step.rs).
    for c in &auto.chains {
        assert!((c.tuned["stiffness"] - 0.1).abs() < 0.002, "{:?}", c.tuned);
    }
    assert!(
        !auto.chains[0]
            .warnings
            .iter()
            .any(|w| w.contains("curvature"))
    );
    let eps = auto.chains[0].tuned["auto_step_size"];
    if let SamplerConfig::Sgld(s) = &mut cfg {
        s.step_size = StepSize::Fixed(5.0 * eps);
    }
    let big = run(&cfg, &post, "run_stiff").expect("runs");
    for c in &big.chains {
        assert!((c.tuned["stiffness"] - 0.5).abs() < 0.01, "{:?}", c.tuned);
    }
    let w = &big.chains[0].warnings;
    assert!(
        w.iter()
            .any(|w| w.contains("too large for the curvature") && w.contains("0.50")),
        "{w:?}"
    );
}

/// A step so large that even a thousandth of it explodes: the run is an error that names the
/// setting, never a result.
#[test]
fn sgld_fails_with_the_step_size_named_when_restarts_do_not_help() {
    let prob = LinReg::<f64>::problem(LINREG_N, LINREG_D, 0.5, 11);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut cfg = small_config("sgld");
    if let SamplerConfig::Sgld(s) = &mut cfg {
        s.step_size = StepSize::Fixed(1e4);
    }
    let err = run(&cfg, &post, "run_huge_sgld").expect_err("must not produce a result");
    assert!(matches!(err, SamplerError::Exploded { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("step_size"), "{text}");
    assert!(text.contains("auto"), "{text}");
}

/// HMC with a fixed, huge step: every proposal diverges and the chain would sit at w*,
/// reporting an LLC of 0. It is stopped and the run fails, naming the settings.
#[test]
fn hmc_with_a_huge_fixed_step_fails_instead_of_reporting_zero() {
    let prob = LinReg::<f64>::problem(LINREG_N, LINREG_D, 0.5, 11);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut cfg = preset("hmc");
    if let SamplerConfig::Hmc(h) = &mut cfg {
        h.adapt_step_size = false;
        h.step_size = 1e3;
        h.warmup = 50;
        h.draws = 2000;
        h.chains = 2;
    }
    let err = run(&cfg, &post, "run_huge_hmc").expect_err("must not produce a result");
    match &err {
        // Stopped early: STUCK_CHECK_AFTER draws, not the 2000 asked for.
        SamplerError::Stuck { transitions, .. } => assert_eq!(*transitions, STUCK_CHECK_AFTER),
        other => panic!("expected Stuck, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("adapt_step_size"), "{text}");
    assert!(text.contains("step_size"), "{text}");

    // Fewer draws than the in-run check waits for: refused at the end instead.
    if let SamplerConfig::Hmc(h) = &mut cfg {
        h.draws = 150;
    }
    match run(&cfg, &post, "run_short_huge_hmc").expect_err("must not produce a result") {
        SamplerError::Stuck { transitions, .. } => assert_eq!(transitions, 150),
        other => panic!("expected Stuck, got {other:?}"),
    }
}

#[test]
fn a_chain_is_stuck_at_its_end_when_all_of_even_a_few_transitions_diverged() {
    use super::{ended_stuck, is_stuck};
    // In the run: only after STUCK_CHECK_AFTER transitions.
    assert!(!is_stuck(150, 150));
    assert!(is_stuck(180, 200) && !is_stuck(179, 200));
    // At the end: also every transition of a shorter chain.
    assert!(ended_stuck(150, 150) && ended_stuck(3, 3) && ended_stuck(180, 200));
    assert!(!ended_stuck(149, 150) && !ended_stuck(0, 0) && !ended_stuck(0, 5));
}

/// `step_size: auto` gives every chain the same calibrated step, records it, and counts the
/// calibration's gradients once.
#[test]
fn sgld_auto_step_is_shared_recorded_and_counted() {
    let prob = LinReg::<f64>::problem(LINREG_N, LINREG_D, 0.5, 11);
    let post = Posterior::new(
        &prob.model,
        prob.w_star.clone(),
        &PosteriorConfig::default(),
    );
    let mut auto = small_config("sgld");
    let mut fixed = auto.clone();
    let SamplerConfig::Sgld(s) = &mut auto else {
        unreachable!()
    };
    s.step_size = StepSize::Auto;
    let a = run(&auto, &post, "run_auto").expect("runs");
    let eps = a.chains[0].tuned["step_size"];
    let lambda_max = prob.hessian_eigs.iter().fold(0.0f64, |m, &e| m.max(e));
    let expect = 0.1 / (post.n_beta * lambda_max + post.gamma);
    // Power iteration on an exactly quadratic loss: within 2 % (see sgld_step's own test).
    assert!((eps / expect - 1.0).abs() < 0.02, "{eps} vs {expect}");
    assert!(
        eps >= expect,
        "the Rayleigh quotient never overestimates λ_max"
    );
    for c in &a.chains {
        assert_eq!(c.tuned["step_size"], eps);
        assert_eq!(c.tuned["auto_step_size"], eps);
    }
    // The same run with that step given explicitly spends 51 gradients fewer, all on chain 0.
    let SamplerConfig::Sgld(f) = &mut fixed else {
        unreachable!()
    };
    f.step_size = StepSize::Fixed(eps);
    let b = run(&fixed, &post, "run_auto").expect("runs");
    assert_eq!(a.chains[0].grad_evals, b.chains[0].grad_evals + 51);
    assert_eq!(a.chains[1].grad_evals, b.chains[1].grad_evals);
    assert_eq!(
        a.chains[0].llc, b.chains[0].llc,
        "same step, same RNG: same trace"
    );
}
