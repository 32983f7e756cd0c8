//! One validation check: a sampler on a built case, judged against the truth.
//!
//! In: a [`BuiltCase`] and a resolved [`SamplerConfig`]. The sampler runs through the production
//! code ([`crate::samplers::run`] on a [`Posterior`], then [`analyze`]), with a run id fixed by
//! (case, sampler, seed), so the same inputs give the same estimate bit for bit. Out: a [`Row`]
//! with the estimate, its diagnostics and the [`Verdict`].
//!
//! Pass criteria ([`judge`]):
//! * |estimate/truth − 1| within [`tolerance`]: HMC and NUTS 3 % on the regular model and 10 %
//!   on deep linear networks, MCLMC and SGLD 15 % everywhere (the samplers issue's bar). On the
//!   trained cases (default training and posterior, as a new user runs them) HMC and NUTS 5 %,
//!   SGLD and MCLMC 10 %, and the run must be healthy ([`health_reasons`]: R-hat ≤ 1.01, bulk
//!   ESS ≥ 400, divergences ≤ 0.1 % of the draws, and none of the warnings that make a sweep
//!   call the run unhealthy: drift, disagreeing chains, SGLD's stiffness and MALA checks, ...).
//!   Until 2026-12-07 those warnings were only in the JSON report, so a run that `status` would
//!   flag could pass here: SGLD with 500,000 steps on `trained_dln43332` at seed 0 read "pass"
//!   with the stiffness check at 0.43.
//! * The Monte Carlo error small enough for that comparison to mean something: the tolerance
//!   is at least two standard errors ([`MAX_SEM_FRACTION`]), so a pass is not an estimate too
//!   noisy to tell.
//! * HMC: the acceptance rate after warmup within [`ACCEPTANCE_TOLERANCE`] of the preset's
//!   `target_acceptance` on every case, i.e. the step-size adaptation did its job. Measured with
//!   the default preset over 20 seeds (`--quick`, f64): 0.792–0.803 on the regular model,
//!   0.778–0.818 on dln432 and 0.785–0.826 on dln333; over 8 seeds in f32, 0.763–0.818.
//!   NUTS is judged the same way (its acceptance is Stan's trajectory-mean statistic); with its
//!   preset, `--quick`, f64, seed 0: 0.804 / 0.802 / 0.797 on regular / dln432 / dln333.
//!   What it took is in the HMC module doc and in [`super::cases`] (the deep linear cases'
//!   localization).

use std::time::Instant;

use serde::Serialize;

use super::{BuiltCase, Case, ValidateError};
use crate::analysis::{HealthChecks, analyze};
use crate::config::schema::{SamplerConfig, SamplerKind};
use crate::numeric::Real;
use crate::posterior::Posterior;

/// How far HMC's (and NUTS's) post-warmup acceptance rate may sit from its target.
pub const ACCEPTANCE_TOLERANCE: f64 = 0.05;

/// The largest sem accepted, as a fraction of the tolerance band's half-width (tol × truth).
pub const MAX_SEM_FRACTION: f64 = 0.5;

/// The relative tolerance of `sampler` on `case`.
pub fn tolerance(sampler: SamplerKind, case: Case) -> f64 {
    match (sampler.is_metropolis(), case) {
        // Trained targets on the default posterior: the bars a researcher needs by default,
        // HMC (and NUTS) within 5 %, SGLD (devinterp's hand-tuned best) and MCLMC within 10 %.
        (true, c) if c.is_trained() => 0.05,
        (false, c) if c.is_trained() => 0.10,
        (true, Case::Regular) => 0.03,
        (true, _) => 0.10,
        (false, _) => 0.15,
    }
}

/// Largest R-hat of a healthy run on a trained case (Vehtari et al. 2021).
pub const HEALTHY_MAX_R_HAT: f64 = 1.01;
/// Smallest bulk ESS of a healthy run on a trained case: 400, i.e. 100 per chain of 4, the
/// number Vehtari et al. (2021) ask for before R-hat and the ESS itself can be trusted; it
/// also keeps llc_sem at most 5 % of llc_std.
pub const HEALTHY_MIN_ESS: f64 = 400.0;
/// Most divergences of a healthy run on a trained case, as a fraction of its draws.
pub const HEALTHY_MAX_DIVERGENCE_FRACTION: f64 = 0.001;

/// Why a run on a trained case is not healthy (empty when it is): the thresholds above, stricter
/// on ESS than the sweep's own health check (which asks 100), then every warning of the run's
/// analysis (`warnings`: what makes a sweep flag it), each as "sweep health check: …".
pub fn health_reasons(
    r_hat: f64,
    ess: f64,
    divergences: u64,
    draws: usize,
    warnings: &[String],
) -> Vec<String> {
    let mut reasons = Vec::new();
    // NaN fails every test.
    if r_hat.is_nan() || r_hat > HEALTHY_MAX_R_HAT {
        reasons.push(format!("R-hat {r_hat:.3} > {HEALTHY_MAX_R_HAT}"));
    }
    if ess.is_nan() || ess < HEALTHY_MIN_ESS {
        reasons.push(format!("bulk ESS {ess:.0} < {HEALTHY_MIN_ESS:.0}"));
    }
    let max_div = HEALTHY_MAX_DIVERGENCE_FRACTION * draws as f64;
    if divergences as f64 > max_div {
        reasons.push(format!(
            "{divergences} divergences > {max_div:.1} (0.1 % of {draws} draws)"
        ));
    }
    // Some repeat a threshold above (R-hat); kept whole, since each says what to do.
    reasons.extend(warnings.iter().map(|w| format!("sweep health check: {w}")));
    reasons
}

/// Pass or fail, and why it failed (empty when it passed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub reasons: Vec<String>,
}

/// Judges an estimate; `acceptance` is (measured, target) when it is judged.
pub fn judge(
    truth: f64,
    estimate: f64,
    sem: f64,
    tolerance: f64,
    acceptance: Option<(Option<f64>, f64)>,
) -> Verdict {
    let mut reasons = Vec::new();
    let rel = estimate / truth - 1.0;
    // Each bound is a `<=` that is false for NaN, so a non-finite number fails.
    let accurate = rel.abs() <= tolerance;
    if !accurate {
        reasons.push(format!(
            "relative error {} outside ±{:.0} %",
            percent(rel),
            100.0 * tolerance
        ));
    }
    let max_sem = MAX_SEM_FRACTION * tolerance * truth.abs();
    let precise = sem <= max_sem;
    if !precise {
        reasons.push(format!(
            "sem {sem:.3} above {max_sem:.3} (half the tolerance): too few effective draws to tell"
        ));
    }
    if let Some((measured, target)) = acceptance {
        match measured {
            Some(a) if (a - target).abs() <= ACCEPTANCE_TOLERANCE => {}
            Some(a) => reasons.push(format!(
                "acceptance {a:.3} not within {ACCEPTANCE_TOLERANCE} of the target {target}"
            )),
            None => reasons.push("no acceptance rate reported".into()),
        }
    }
    Verdict {
        passed: reasons.is_empty(),
        reasons,
    }
}

/// "+1.23 %", or "n/a" when not finite.
pub fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.2} %", 100.0 * x)
    } else {
        "n/a".into()
    }
}

/// One line of the validation table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub case: &'static str,
    pub sampler: &'static str,
    pub truth: f64,
    pub estimate: f64,
    pub sem: f64,
    pub rel_error: f64,
    pub tolerance: f64,
    /// HMC, NUTS: mean post-warmup acceptance over chains, judged against `target_acceptance`.
    /// SGLD: the MALA-style diagnostic (the fraction a Metropolis correction would accept),
    /// never judged (`target_acceptance` is None).
    pub acceptance: Option<f64>,
    pub target_acceptance: Option<f64>,
    pub ess: f64,
    pub r_hat: f64,
    pub chains: usize,
    pub draws: usize,
    pub divergences: u64,
    pub grad_evals: u64,
    /// The sampler run alone (not the target's training).
    pub walltime_sec: f64,
    /// The analysis' health warnings (R-hat, ESS, drift, ...), for the JSON output.
    pub warnings: Vec<String>,
    /// What each chain tuned or adapted (step size, L, ...), chain by chain, as analysis.json's
    /// `tuned`: the first thing to read when a case fails.
    pub tuned: std::collections::BTreeMap<String, Vec<f64>>,
    pub verdict: Verdict,
}

/// `tuned` regrouped by key: one value per chain (NaN where a chain lacks the key).
fn tuned_by_key(run: &crate::samplers::SamplerRun) -> std::collections::BTreeMap<String, Vec<f64>> {
    let mut out = std::collections::BTreeMap::<String, Vec<f64>>::new();
    for chain in &run.chains {
        for key in chain.tuned.keys() {
            out.entry(key.clone()).or_default();
        }
    }
    for (key, values) in out.iter_mut() {
        values.extend(
            run.chains
                .iter()
                .map(|c| c.tuned.get(key).copied().unwrap_or(f64::NAN)),
        );
    }
    out
}

/// The run id of a check: it seeds every chain, so it names everything that should change
/// the chains (case, sampler, the config's replicate seed) and nothing else.
pub fn run_id(case: Case, sampler: &SamplerConfig) -> String {
    format!(
        "validate_{}_{}_seed{}",
        case.name(),
        sampler.name(),
        sampler.seed()
    )
}

/// Runs `sampler` on `built` and judges the estimate.
pub fn run<F: Real>(built: &BuiltCase<F>, sampler: &SamplerConfig) -> Result<Row, ValidateError> {
    let post = Posterior::new(&built.loss, built.w_star.clone(), &built.posterior);
    let started = Instant::now();
    let run = crate::samplers::run(sampler, &post, &run_id(built.case, sampler)).map_err(|e| {
        ValidateError::Sampler {
            case: built.case.name(),
            sampler: sampler.name(),
            message: e.to_string(),
        }
    })?;
    let walltime_sec = started.elapsed().as_secs_f64();
    let a = analyze(&run, &HealthChecks::default());
    let tol = tolerance(sampler.kind(), built.case);
    let target_acceptance = sampler.target_acceptance();
    let mut verdict = judge(
        built.truth,
        a.llc_mean,
        a.llc_sem,
        tol,
        target_acceptance.map(|t| (a.acceptance_rate, t)),
    );
    if built.case.is_trained() {
        let unhealthy = health_reasons(
            a.r_hat,
            a.ess,
            a.divergences,
            a.chains * a.draws,
            &a.warnings,
        );
        verdict.passed &= unhealthy.is_empty();
        verdict.reasons.extend(unhealthy);
    }
    Ok(Row {
        case: built.case.name(),
        sampler: sampler.name(),
        truth: built.truth,
        estimate: a.llc_mean,
        sem: a.llc_sem,
        rel_error: a.llc_mean / built.truth - 1.0,
        tolerance: tol,
        acceptance: a.acceptance_rate,
        target_acceptance,
        ess: a.ess,
        r_hat: a.r_hat,
        chains: a.chains,
        draws: a.draws,
        divergences: a.divergences,
        grad_evals: a.grad_evals,
        walltime_sec,
        warnings: a.warnings,
        tuned: tuned_by_key(&run),
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuned_values_are_listed_chain_by_chain() {
        let chain = |pairs: &[(&str, f64)]| crate::samplers::ChainTrace {
            tuned: pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
            ..Default::default()
        };
        let run = crate::samplers::SamplerRun {
            chains: vec![
                chain(&[("step_size", 0.5), ("L", 2.0)]),
                chain(&[("step_size", 0.25)]),
            ],
            ..Default::default()
        };
        let tuned = tuned_by_key(&run);
        assert_eq!(tuned["step_size"], vec![0.5, 0.25]);
        // A chain without the key keeps its place, so values line up with chain numbers.
        assert_eq!(tuned["L"][0], 2.0);
        assert!(tuned["L"][1].is_nan());
    }

    #[test]
    fn tolerances_are_the_issues() {
        assert_eq!(tolerance(SamplerKind::Hmc, Case::Regular), 0.03);
        assert_eq!(tolerance(SamplerKind::Hmc, Case::Dln432), 0.10);
        assert_eq!(tolerance(SamplerKind::Hmc, Case::Dln333), 0.10);
        for case in Case::ALL {
            assert_eq!(
                tolerance(SamplerKind::Nuts, case),
                tolerance(SamplerKind::Hmc, case)
            );
        }
        for case in Case::ALL.into_iter().filter(|c| !c.is_trained()) {
            assert_eq!(tolerance(SamplerKind::Mclmc, case), 0.15);
            assert_eq!(tolerance(SamplerKind::Sgld, case), 0.15);
        }
    }

    #[test]
    fn trained_cases_have_the_default_bars_and_health_is_judged() {
        for case in [
            Case::TrainedRegular,
            Case::TrainedDln432,
            Case::TrainedDln333,
        ] {
            assert_eq!(tolerance(SamplerKind::Hmc, case), 0.05);
            assert_eq!(tolerance(SamplerKind::Sgld, case), 0.10);
            assert_eq!(tolerance(SamplerKind::Mclmc, case), 0.10);
        }
        assert!(health_reasons(1.005, 400.0, 8, 8000, &[]).is_empty());
        let bad = health_reasons(1.02, 399.0, 9, 8000, &[]);
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad[0].contains("R-hat 1.020") && bad[1].contains("ESS 399"));
        assert!(bad[2].contains("9 divergences"));
        assert_eq!(health_reasons(f64::NAN, f64::NAN, 0, 8000, &[]).len(), 2);
        // A run within every threshold is still unhealthy when its analysis warns (here, SGLD's
        // stiffness check), as a sweep's `status` would flag it.
        let warned = health_reasons(1.005, 1000.0, 0, 4000, &["SGLD's step is too large".into()]);
        assert_eq!(warned, ["sweep health check: SGLD's step is too large"]);
    }

    #[test]
    fn an_accurate_precise_estimate_passes() {
        let v = judge(4.0, 4.2, 0.05, 0.10, None);
        assert!(v.passed, "{v:?}");
        assert!(v.reasons.is_empty());
        // On the boundary of the band still passes: the bar is "within", inclusive.
        assert!(judge(4.0, 4.0 * 0.9, 0.05, 0.10, None).passed);
    }

    #[test]
    fn each_failure_is_named() {
        let outside = judge(4.0, 4.5, 0.05, 0.10, None);
        assert!(!outside.passed);
        assert!(outside.reasons[0].contains("+12.50 %"), "{outside:?}");
        // sem 0.25 > 0.10 × 4 / 2 = 0.2.
        let noisy = judge(4.0, 4.0, 0.25, 0.10, None);
        assert!(!noisy.passed);
        assert!(noisy.reasons[0].contains("sem"), "{noisy:?}");
        let off_target = judge(4.0, 4.0, 0.05, 0.10, Some((Some(0.9), 0.8)));
        assert!(
            off_target.reasons[0].contains("acceptance 0.900"),
            "{off_target:?}"
        );
        assert!(judge(4.0, 4.0, 0.05, 0.10, Some((Some(0.84), 0.8))).passed);
        assert!(!judge(4.0, 4.0, 0.05, 0.10, Some((None, 0.8))).passed);
    }

    #[test]
    fn non_finite_numbers_fail() {
        let v = judge(4.0, f64::NAN, f64::NAN, 0.10, None);
        assert!(!v.passed);
        assert_eq!(v.reasons.len(), 2);
        assert!(v.reasons[0].contains("n/a"));
        assert!(!judge(4.0, 4.0, f64::INFINITY, 0.10, None).passed);
    }
}
