//! The LLC estimate and its health checks, from a finished sampler run.
//!
//! Input: a [`SamplerRun`] (one [`ChainTrace`](crate::samplers::ChainTrace) per chain) and the
//! [`HealthChecks`] thresholds. Output: an [`Analysis`], the sample-derived part of a run's
//! analysis.json (ARCHITECTURE.md §3); the worker adds ids, configs and walltime around it. Pure: no
//! I/O, no logging (the caller logs `warnings` if it wants to).
//!
//! * `llc_mean` / `llc_std` over all chains × draws, `llc_sem` = llc_std/√ess with ess the
//!   bulk ESS of the LLC draws (ArviZ-exact, [`crate::diagnostics`]), or the batch-means ESS
//!   where that is smaller ([`sem_ess`]). Why both: the bulk ESS sums autocorrelations up to
//!   Geyer's truncation, the first lag pair whose sum is negative. MCLMC's LLC traces can dip
//!   below zero within a few steps and then stay positive for hundreds (a deep linear network
//!   6 → \[2\] → 6, λ = 10, n = 10,000: autocorrelation −0.13 at lag 7, +0.17 at 17, +0.06 at 60),
//!   and the bulk ESS came out 3–5× the truth (τ 3–6 steps against 12–24 from batch means and
//!   from thinned draws). Measured (2026-12-06) on 8 such targets × MCLMC: llc_sem 0.014–0.021
//!   before, 0.028–0.049 after, the chain-means χ² (below) 2.3–41.5 before (median 15 on 3
//!   degrees of freedom, one run flagged), all 8 healthy after, with errors against λ = 10 of
//!   −1.8 to +0.01 % (one target at −1.8 %, where HMC gave −1.3 %). HMC on the same targets:
//!   llc_sem changed by 0–9 %. Where the bulk ESS is right the two agree within the batch estimate's noise
//!   (20 batches per chain, ±16 % on the variance for 4 chains), and the smaller is taken, so
//!   llc_sem errs on the large side. `ess_bulk` itself stays ArviZ's.
//! * Health warnings: one chain (R-hat undefined), R-hat above `max_r_hat`, bulk or tail ESS
//!   below `min_ess`, drift,
//!   negative `llc_mean`, divergences above `max_divergence_fraction` of the draws, non-finite
//!   draws, plus every chain's own warnings and the run's (e.g. an unconverged target).
//!   `healthy` is true exactly when there is no warning: `warnings` is the list of reasons.
//! * Drift test: the draws of every chain are cut in halves; the pooled first halves and
//!   pooled last halves each give a mean and an sem (std/√ess_bulk of those halves); drift is
//!   flagged when |mean₁ − mean₂| / √(sem₁² + sem₂²) exceeds `drift_z`. A stationary chain
//!   exceeds 4 in well under 0.1 % of runs; a chain still relaxing toward equilibrium (too
//!   short a warmup) shows up as a systematic difference between the halves.
//! * Chain-means test: each chain's mean m_c and sem s_c (its std/√ess_bulk of that chain
//!   alone, or its batch-means sem where larger, as for llc_sem; the calibration below was
//!   measured before that floor, which only lowers χ²) give χ² = Σ (m_c − m̄)²/s_c² with m̄
//!   their inverse-variance weighted mean, on
//!   C − 1 degrees of freedom if every s_c is right. It is flagged when its Wilson–Hilferty
//!   normal score exceeds `chain_means_z` (4.75: p < 10⁻⁶, χ² > 32.8 for 4 chains). So far
//!   out because each chain's ESS is itself an estimate, whose error inflates χ²: on 684
//!   default-preset runs at n ≤ 10,000 (HMC, MCLMC, SGLD; 17 deep linear networks, 2 small tanh
//!   models; `validate` seeds 0 and 11–30 and a user-style sweep) the largest χ² were 25.0 and
//!   24.9 (p ≈ 2·10⁻⁵ each, about 30× more often than the nominal rate), every other one below
//!   22. The runs it is for had χ² = 36–53.
//!
//!   Why next to R-hat: R-hat compares the chain means' spread with the draws' variance, not
//!   with their standard errors, so with many autocorrelated draws it stays under 1.01 while
//!   the chains disagree by many sems. That happens when the LLC has a slow component of small
//!   amplitude (a deep linear network with a rank-deficient teacher at n = 10⁶: four HMC chains
//!   of 16,000 draws with means 5.70 / 5.76 / 6.00 / 6.02, R-hat 1.004, llc_sem 0.020, χ² = 53
//!   on 3), which ESS estimators truncate away, so llc_sem understates the error.
//!
//! * Below-L0 test: every draw's value nβ(L_n(w) − L0) must be above −`max_below_l0` (0.05).
//!   At a minimum w*, L_n(w) ≥ L0 nearby, up to what w*'s remaining gradient allows (training's
//!   default tolerance keeps that to 0.01 LLC units on average, `train.rs`). A draw well below
//!   catches what the mean hides: a w* that is a saddle, whose estimate stays positive while
//!   describing the wrong point. Measured (2026-12-05): 719 runs at converged targets (568 deep
//!   linear networks of 2–6 layers at n = 10⁴–10⁶, 151 small tanh models; HMC, MCLMC, SGLD, NUTS),
//!   lowest draw −0.00005 (rounding, at λ = 0.5 where many draws sit near 0); a 6-layer deep linear
//!   target stopped at a saddle, −0.36 / −0.36 / −0.37 with HMC / SGLD / MCLMC, whose estimates
//!   were 26 % low and otherwise healthy. Not reported again when `llc_mean` itself is negative.
//!
//! Non-finite numbers (undefined diagnostics, NaN draws) serialize as JSON `null`, never as a
//! made-up value.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::diagnostics::{Diagnostics, ess_bulk};
use crate::samplers::SamplerRun;

/// Thresholds of the health warnings.
#[derive(Debug, Clone)]
pub struct HealthChecks {
    /// Warn when R-hat exceeds this (Vehtari et al. 2021 recommend 1.01).
    pub max_r_hat: f64,
    /// Warn when bulk or tail ESS is below this (Vehtari et al.: 100 for 4 chains).
    pub min_ess: f64,
    /// Warn when the first and last halves' means differ by more than this many sems.
    pub drift_z: f64,
    /// Warn when the chain means disagree beyond their sems: the χ² statistic's normal score
    /// (Wilson–Hilferty) above this. 4.75 is the one-sided normal 1 − 10⁻⁶ quantile.
    pub chain_means_z: f64,
    /// Warn when a draw's LLC value nβ(L_n(w) − L0) is below −this: the chains found a loss
    /// lower than w*'s by more than rounding and w*'s remaining gradient explain, so w* is not
    /// a minimum (see the module doc).
    pub max_below_l0: f64,
    /// Warn when divergent transitions exceed this fraction of the recorded draws (chains ×
    /// draws). A handful of divergences in thousands of draws does not bias the estimate
    /// measurably; Stan's guidance is that any divergence deserves a look, so a count below
    /// the threshold is still reported in `divergences`, it just does not make the run unhealthy.
    pub max_divergence_fraction: f64,
}

impl Default for HealthChecks {
    fn default() -> Self {
        HealthChecks {
            max_r_hat: 1.01,
            min_ess: 100.0,
            drift_z: 4.0,
            chain_means_z: 4.75,
            max_below_l0: 0.05,
            max_divergence_fraction: 0.001,
        }
    }
}

/// The sample-derived fields of analysis.json.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    #[serde(serialize_with = "finite_or_null")]
    pub llc_mean: f64,
    #[serde(serialize_with = "finite_or_null")]
    pub llc_std: f64,
    #[serde(serialize_with = "finite_or_null")]
    pub llc_sem: f64,
    #[serde(serialize_with = "all_finite_or_null")]
    pub llc_chain_means: Vec<f64>,
    /// The ESS behind `llc_sem`: `ess_bulk`, or the batch-means ESS where that is smaller
    /// ([`sem_ess`]).
    #[serde(serialize_with = "finite_or_null")]
    pub ess: f64,
    #[serde(serialize_with = "finite_or_null")]
    pub ess_bulk: f64,
    #[serde(serialize_with = "finite_or_null")]
    pub ess_tail: f64,
    #[serde(serialize_with = "finite_or_null")]
    pub r_hat: f64,
    /// Monte Carlo standard error of the mean from ArviZ's `ess_mean` (for comparison).
    #[serde(serialize_with = "finite_or_null")]
    pub mcse_mean: f64,
    pub chains: usize,
    /// Recorded draws per chain (the shortest chain's count if they differ).
    pub draws: usize,
    /// Gradient evaluations of all chains (full-data gradient equivalents).
    pub grad_evals: u64,
    #[serde(serialize_with = "finite_or_null")]
    pub ess_per_grad_eval: f64,
    /// Mean over chains of HMC's acceptance or SGLD's MALA diagnostic; absent for MCLMC.
    #[serde(serialize_with = "option_finite_or_null")]
    pub acceptance_rate: Option<f64>,
    pub divergences: u64,
    /// Tuned/adapted values (step size, L, ...), one entry per chain in chain order.
    #[serde(serialize_with = "map_finite_or_null")]
    pub tuned: BTreeMap<String, Vec<f64>>,
    /// True exactly when `warnings` is empty: the estimate passed every health check.
    pub healthy: bool,
    /// Why the run is unhealthy (empty when it is healthy).
    pub warnings: Vec<String>,
}

fn finite_or_null<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else {
        s.serialize_none()
    }
}

fn option_finite_or_null<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(v) => finite_or_null(v, s),
        None => s.serialize_none(),
    }
}

fn to_options(xs: &[f64]) -> Vec<Option<f64>> {
    xs.iter().map(|x| x.is_finite().then_some(*x)).collect()
}

fn all_finite_or_null<S: Serializer>(xs: &[f64], s: S) -> Result<S::Ok, S::Error> {
    to_options(xs).serialize(s)
}

/// Keys of `tuned` that count things (leapfrog steps, minibatch rows, restarts). They are
/// written as JSON integers, so that pandas and numpy read `10`, not `10.0`; the samplers keep
/// every tuned value as an f64 in memory.
const TUNED_COUNTS: [&str; 3] = ["batch_size", "num_integration_steps", "restarts"];

/// One tuned value as written: a count as an integer, anything else as a float.
#[derive(Serialize)]
#[serde(untagged)]
enum TunedValue {
    Count(u64),
    Real(f64),
}

/// `x` as an integer when it is a whole number that an f64 holds exactly (0 ≤ x ≤ 2^53), for
/// writing counts kept as floats as JSON integers.
pub(crate) fn whole_number(x: f64) -> Option<u64> {
    ((0.0..=9_007_199_254_740_992.0).contains(&x) && x.fract() == 0.0).then_some(x as u64)
}

/// `tuned` with non-finite values as null and [`TUNED_COUNTS`] as integers.
fn map_finite_or_null<S: Serializer>(
    m: &BTreeMap<String, Vec<f64>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let as_options: BTreeMap<String, Vec<Option<f64>>> =
        m.iter().map(|(k, v)| (k.clone(), to_options(v))).collect();
    serialize_tuned(&as_options, s)
}

/// Writes a `tuned` map (None as null) with [`TUNED_COUNTS`] as integers; analysis.json and
/// the run records (`store::record`) both write it so. A count that is not a whole number below
/// 2^53 (it cannot be one, but a float is what arrives) stays a float rather than being rounded.
pub(crate) fn serialize_tuned<S: Serializer>(
    m: &BTreeMap<String, Vec<Option<f64>>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let as_written: BTreeMap<&String, Vec<Option<TunedValue>>> = m
        .iter()
        .map(|(k, v)| {
            let counts = TUNED_COUNTS.contains(&k.as_str());
            let values = v
                .iter()
                .map(|x| {
                    x.map(|x| match whole_number(x).filter(|_| counts) {
                        Some(n) => TunedValue::Count(n),
                        None => TunedValue::Real(x),
                    })
                })
                .collect();
            (k, values)
        })
        .collect();
    as_written.serialize(s)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n − 1); NaN for fewer than 2 values.
fn std_dev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// The drift statistic |mean₁ − mean₂| / √(sem₁² + sem₂²) between the first and last halves
/// of every chain; NaN when the halves are too short for an ESS.
pub fn drift_z(chains: &[Vec<f64>]) -> f64 {
    let half_stats = |take_first: bool| {
        let halves: Vec<Vec<f64>> = chains
            .iter()
            .map(|c| {
                let h = c.len() / 2;
                if take_first {
                    c[..h].to_vec()
                } else {
                    c[c.len() - h..].to_vec()
                }
            })
            .collect();
        let all = halves.concat();
        (mean(&all), std_dev(&all) / ess_bulk(&halves).sqrt())
    };
    let (m1, se1) = half_stats(true);
    let (m2, se2) = half_stats(false);
    (m1 - m2).abs() / (se1 * se1 + se2 * se2).sqrt()
}

/// Batches per chain for the batch-means variance of a chain's mean (module doc): 20 batches
/// of 2,000 draws in MCLMC's default 40,000, long enough for its slowest correlations on the
/// models measured, and 4 × 19 degrees of freedom for a run's sem (±16 % on its variance).
pub const BATCHES_PER_CHAIN: usize = 20;
/// Fewest draws per batch: shorter batches add noise and no information the ESS does not have.
const MIN_BATCH_LEN: usize = 10;

/// The variance of a chain's mean by batch means: the draws cut into [`BATCHES_PER_CHAIN`]
/// consecutive batches (the remainder at the start dropped: it is the furthest from
/// equilibrium), the batch means' sample variance over the number of batches. `None` when the
/// chain is too short for batches of [`MIN_BATCH_LEN`] or a draw is not finite.
pub fn batch_means_variance(chain: &[f64]) -> Option<f64> {
    let len = chain.len() / BATCHES_PER_CHAIN;
    if len < MIN_BATCH_LEN || chain.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let used = &chain[chain.len() - len * BATCHES_PER_CHAIN..];
    let means: Vec<f64> = used.chunks_exact(len).map(mean).collect();
    let m = mean(&means);
    let b = BATCHES_PER_CHAIN as f64;
    let var_batch_means = means.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (b - 1.0);
    Some(var_batch_means / b)
}

/// The ESS behind `llc_sem`: the smaller of ArviZ's bulk ESS and the batch-means ESS
/// llc_std² / Var(λ̂), Var(λ̂) = Σ_c Var(m_c)/C² from [`batch_means_variance`] (chains of equal
/// length). Geyer's truncation in the bulk ESS stops at the first negative pair of
/// autocorrelations; an MCLMC trace whose autocorrelation dips below zero and then has a long
/// positive tail is cut there (module doc), and batch means, which need no truncation, see the
/// tail. With too few draws for batches, or unequal chains, it is the bulk ESS.
pub fn sem_ess(chains: &[Vec<f64>], ess_bulk: f64, llc_std: f64) -> f64 {
    let equal = chains.windows(2).all(|w| w[0].len() == w[1].len());
    let variances: Option<Vec<f64>> = chains.iter().map(|c| batch_means_variance(c)).collect();
    match variances {
        Some(v) if equal && !v.is_empty() => {
            let c = v.len() as f64;
            let var_mean = v.iter().sum::<f64>() / (c * c);
            let ess_batch = llc_std * llc_std / var_mean;
            if ess_batch.is_finite() && ess_batch < ess_bulk {
                ess_batch
            } else {
                ess_bulk
            }
        }
        _ => ess_bulk,
    }
}

/// The chain-means statistic χ² = Σ_c (m_c − m̄)²/s_c² (module doc) and its degrees of freedom
/// C − 1; `None` with fewer than two chains or when a chain's sem is undefined or zero (too
/// few or constant draws: other checks report those).
pub fn chain_means_chi2(chains: &[Vec<f64>]) -> Option<(f64, usize)> {
    if chains.len() < 2 {
        return None;
    }
    let mut means_and_weights = Vec::with_capacity(chains.len());
    for c in chains {
        // The larger of the two estimates, as for llc_sem ([`sem_ess`]).
        let sem_ess = std_dev(c) / ess_bulk(std::slice::from_ref(c)).sqrt();
        let sem = match batch_means_variance(c) {
            Some(v) if v.sqrt() > sem_ess => v.sqrt(),
            _ => sem_ess,
        };
        if !(sem.is_finite() && sem > 0.0) {
            return None;
        }
        means_and_weights.push((mean(c), 1.0 / (sem * sem)));
    }
    let total_weight: f64 = means_and_weights.iter().map(|(_, w)| w).sum();
    let pooled = means_and_weights.iter().map(|(m, w)| m * w).sum::<f64>() / total_weight;
    let chi2: f64 = means_and_weights
        .iter()
        .map(|(m, w)| w * (m - pooled) * (m - pooled))
        .sum();
    chi2.is_finite().then_some((chi2, chains.len() - 1))
}

/// Wilson–Hilferty: (χ²/k)^⅓ is nearly normal with mean 1 − 2/(9k) and variance 2/(9k), so
/// this is χ²'s standard normal score. Its 1 − 10⁻⁶ quantiles are 3–15 % above the exact χ²
/// ones for k = 1–7 (6.9 % at k = 3, four chains; tested): a threshold on it errs towards
/// fewer warnings, and needs no χ² distribution function.
pub fn chi2_normal_score(chi2: f64, dof: usize) -> f64 {
    let k = dof as f64;
    let v = 2.0 / (9.0 * k);
    ((chi2 / k).cbrt() - (1.0 - v)) / v.sqrt()
}

/// Analyses a finished run.
pub fn analyze(run: &SamplerRun, checks: &HealthChecks) -> Analysis {
    let chains: Vec<Vec<f64>> = run.chains.iter().map(|c| c.llc.clone()).collect();
    let all = chains.concat();
    let diag = Diagnostics::compute(&chains);
    let llc_mean = mean(&all);
    let llc_std = std_dev(&all);
    let ess = sem_ess(&chains, diag.ess_bulk, llc_std);
    let grad_evals: u64 = run.chains.iter().map(|c| c.grad_evals).sum();
    let acceptances: Vec<f64> = run
        .chains
        .iter()
        .filter_map(|c| c.acceptance_rate)
        .collect();
    let divergences: u64 = run.chains.iter().map(|c| c.divergences).sum();

    let mut tuned: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (i, c) in run.chains.iter().enumerate() {
        for (k, &v) in &c.tuned {
            let per_chain = tuned
                .entry(k.clone())
                .or_insert_with(|| vec![f64::NAN; run.chains.len()]);
            per_chain[i] = v;
        }
    }

    let mut a = Analysis {
        llc_mean,
        llc_std,
        llc_sem: llc_std / ess.sqrt(),
        llc_chain_means: chains.iter().map(|c| mean(c)).collect(),
        ess,
        ess_bulk: diag.ess_bulk,
        ess_tail: diag.ess_tail,
        r_hat: diag.r_hat,
        mcse_mean: diag.mcse_mean,
        chains: chains.len(),
        draws: chains.iter().map(Vec::len).min().unwrap_or(0),
        grad_evals,
        ess_per_grad_eval: ess / grad_evals as f64,
        acceptance_rate: (!acceptances.is_empty()).then(|| mean(&acceptances)),
        divergences,
        tuned,
        healthy: false,
        warnings: Vec::new(),
    };
    a.warnings = health_warnings(&a, &chains, checks);
    a.warnings
        .extend(run.chains.iter().flat_map(|c| c.warnings.iter().cloned()));
    a.warnings.extend(run.warnings.iter().cloned());
    a.healthy = a.warnings.is_empty();
    a
}

/// `x` with three decimals, or as many more as it takes not to print a number at or below
/// `bar` (R-hat 1.010011 read "1.010 > 1.01").
fn above(x: f64, bar: f64) -> String {
    (3..=9)
        .map(|d| format!("{x:.d$}"))
        .find(|s| s.parse::<f64>().is_ok_and(|v| v > bar))
        .unwrap_or_else(|| x.to_string())
}

/// The health warnings of an analysis (see the module doc).
fn health_warnings(a: &Analysis, chains: &[Vec<f64>], checks: &HealthChecks) -> Vec<String> {
    let mut w = Vec::new();
    let total: usize = chains.iter().map(Vec::len).sum();
    if total == 0 {
        w.push("no LLC draws were recorded: nothing to estimate".into());
        return w;
    }
    let non_finite = chains.iter().flatten().filter(|x| !x.is_finite()).count();
    if non_finite > 0 {
        w.push(format!(
            "{non_finite} of {total} LLC draws are NaN or infinite: the loss overflowed; \
             the estimate and diagnostics are undefined (lower the step size)"
        ));
    }
    if chains.iter().any(|c| c.len() != a.draws) {
        w.push("chains recorded different numbers of draws: ESS and R-hat are undefined".into());
    }
    if chains.len() == 1 {
        // ArviZ's R-hat, like this one, is undefined for one chain; without it nothing
        // compares independent starts, and "healthy" would claim a check that was not made.
        w.push(
            "one chain: R-hat and the chain-means test need at least 2 chains, so convergence \
             was not checked; set chains: 2 or more"
                .into(),
        );
    }
    let ragged = chains.iter().any(|c| c.len() != a.draws);
    if chains.len() > 1 && non_finite == 0 && !ragged && !a.r_hat.is_finite() {
        // NaN compares false with the limit below, so this needs its own line. R-hat is
        // undefined (as in ArviZ) for fewer than 4 draws, and for draws that do not vary
        // within the chains: a chain that never moved, whose ESS still reads every draw.
        w.push(
            "R-hat is undefined (fewer than 4 draws, or LLC draws that do not vary within the \
             chains: did every transition get rejected?), so convergence was not checked"
                .into(),
        );
    }
    if a.r_hat > checks.max_r_hat {
        w.push(format!(
            "R-hat {} > {}: the chains disagree; run longer or check for multimodality",
            above(a.r_hat, checks.max_r_hat),
            checks.max_r_hat
        ));
    }
    for (name, ess) in [("bulk", a.ess_bulk), ("tail", a.ess_tail)] {
        if ess < checks.min_ess {
            w.push(format!(
                "{name} ESS {ess:.0} < {}: too few effective draws for a reliable llc_sem; \
                 run more draws",
                checks.min_ess
            ));
        }
    }
    let z = drift_z(chains);
    if z > checks.drift_z {
        w.push(format!(
            "llc drifts: the first and last halves of the draws differ by {z:.1} standard \
             errors (> {}); the chains had not reached equilibrium — lengthen warmup",
            checks.drift_z
        ));
    }
    if let Some((chi2, dof)) = chain_means_chi2(chains) {
        let score = chi2_normal_score(chi2, dof);
        if score > checks.chain_means_z {
            w.push(format!(
                "the chain means disagree beyond their standard errors (χ² = {chi2:.1} on {dof} \
                 degrees of freedom, normal score {score:.1} > {}): the LLC moves slowly along \
                 some direction, so llc_sem understates the error; run longer and compare runs \
                 with other seeds",
                checks.chain_means_z
            ));
        }
    }
    let lowest = chains
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    if a.llc_mean < 0.0 {
        w.push(format!(
            "llc_mean {:.4} < 0: the chains found lower loss than L0, so w* is not a local \
             minimum; train the target longer",
            a.llc_mean
        ));
    } else if lowest < -checks.max_below_l0 {
        w.push(format!(
            "draws reached a loss below L0 by {:.3} LLC units (> {}): w* is not a minimum (a \
             saddle, or training stopped short), so the estimate describes the wrong point; \
             train the target longer (raise training.steps, and lower training.grad_tol so \
             that training does not stop at a saddle)",
            -lowest, checks.max_below_l0
        ));
    }
    if a.divergences as f64 > checks.max_divergence_fraction * total as f64 {
        w.push(format!(
            "{} divergent transitions in {total} draws (> {} %): the step size is too large \
             for the posterior's curvature somewhere; the estimate may be biased",
            a.divergences,
            100.0 * checks.max_divergence_fraction
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samplers::ChainTrace;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// C chains of N draws of x_t = a_t + s_t: a_t an AR(2) with complex roots (radius 0.8,
    /// period 12 draws; unit innovations), whose autocorrelation dips below zero, plus s_t a
    /// slow AR(1) (φ = 0.995, innovations 0.03) of 1.5 % of the variance: the shape of the MCLMC
    /// traces in the module doc. Integrated autocorrelation time, from the long-run variances
    /// σ²/(1 − Σφ)²: (1/0.2544² + 0.0009/0.005²) / (5.919 + 0.0902) = 51.45 / 6.009 = 8.56.
    fn oscillating_then_slow(seed: u64, chains: usize, n: usize) -> Vec<Vec<f64>> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let (r, period) = (0.8f64, 12.0f64);
        let (p1, p2) = (2.0 * r * (std::f64::consts::TAU / period).cos(), -r * r);
        (0..chains)
            .map(|_| {
                let (mut a1, mut a2, mut s) = (0.0f64, 0.0f64, 0.0f64);
                (0..n)
                    .map(|_| {
                        let e: f64 = StandardNormal.sample(&mut rng);
                        let f: f64 = StandardNormal.sample(&mut rng);
                        let a = p1 * a1 + p2 * a2 + e;
                        (a2, a1) = (a1, a);
                        s = 0.995 * s + 0.03 * f;
                        a + s
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn batch_means_catch_the_slow_tail_that_the_bulk_ess_truncates() {
        const TAU: f64 = 8.56; // oscillating_then_slow's doc
        let chains = oscillating_then_slow(7, 4, 40_000);
        let draws = 160_000.0;
        let all = chains.concat();
        let bulk = ess_bulk(&chains);
        let ess = sem_ess(&chains, bulk, std_dev(&all));
        // The defect this guards against: Geyer's truncation at the first negative pair of
        // autocorrelations leaves the bulk ESS about twice the truth here.
        assert!(draws / bulk < 0.6 * TAU, "bulk τ {}", draws / bulk);
        // Batch means: 76 degrees of freedom give ±16 % (one sd) on the variance, and 2,000-draw
        // batches cut the slow part's τ = 399 a little; 35 % is about two sds.
        let tau = draws / ess;
        assert!(
            (tau / TAU - 1.0).abs() < 0.35,
            "batch-means τ {tau} against {TAU}"
        );
        // Per chain too, so the chain-means χ² sees sems of the right size: its mean is the
        // degrees of freedom (3) when they are right.
        let (chi2, dof) = chain_means_chi2(&chains).unwrap();
        assert_eq!(dof, 3);
        assert!(chi2 < 16.3, "χ² {chi2} (p = 0.001 on 3 dof)");
    }

    #[test]
    fn one_chain_is_not_healthy_because_r_hat_is_undefined() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let chain: Vec<f64> = (0..2_000)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let chain: Vec<f64> = chain.iter().map(|x: &f64| 5.0 + x).collect();
        let a = analyze(&run_of(vec![chain]), &HealthChecks::default());
        assert!(a.r_hat.is_nan());
        assert!(!a.healthy);
        assert!(a.warnings[0].contains("one chain"), "{:?}", a.warnings);
        assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
    }

    #[test]
    fn a_value_above_a_bar_never_prints_as_the_bar() {
        assert_eq!(above(1.010011, 1.01), "1.01001");
        assert_eq!(above(1.0234, 1.01), "1.023");
        assert_eq!(above(1.0104, 1.01), "1.0104");
    }

    #[test]
    fn without_long_correlations_the_sem_is_the_bulk_ess_one_or_close() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let chains: Vec<Vec<f64>> = (0..4)
            .map(|_| {
                (0..4_000)
                    .map(|_| StandardNormal.sample(&mut rng))
                    .collect()
            })
            .collect();
        let bulk = ess_bulk(&chains);
        let ess = sem_ess(&chains, bulk, std_dev(&chains.concat()));
        assert!(ess <= bulk);
        // Never larger, and on independent draws within the batch estimate's noise (±16 %).
        assert!(ess / bulk > 0.6, "{ess} against {bulk}");
        // Too short for batches of 10: the bulk ESS alone.
        let short: Vec<Vec<f64>> = chains.iter().map(|c| c[..150].to_vec()).collect();
        let bulk = ess_bulk(&short);
        assert_eq!(sem_ess(&short, bulk, std_dev(&short.concat())), bulk);
        assert_eq!(batch_means_variance(&chains[0][..199]), None);
        assert!(batch_means_variance(&chains[0][..200]).is_some());
    }

    fn run_of(chains: Vec<Vec<f64>>) -> SamplerRun {
        SamplerRun {
            chains: chains
                .into_iter()
                .map(|llc| ChainTrace {
                    llc,
                    grad_evals: 1000,
                    ..Default::default()
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    fn iid(seed: u64, chains: usize, draws: usize, mean: f64) -> Vec<Vec<f64>> {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..chains)
            .map(|_| {
                (0..draws)
                    .map(|_| {
                        let z: f64 = StandardNormal.sample(&mut r);
                        mean + z
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn healthy_iid_draws_have_no_warnings_and_sem_matches_theory() {
        let a = analyze(&run_of(iid(1, 4, 1000, 5.0)), &HealthChecks::default());
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        assert!(a.healthy);
        // 4000 iid N(5, 1) draws: mean within 4 sems (4/√4000 ≈ 0.063) of 5, std within 5 %
        // (its relative sd is 1/√(2·4000) ≈ 1.1 %), ESS near 4000 (ArviZ's estimate of iid
        // draws scatters by a few %: allow 15 %).
        assert!((a.llc_mean - 5.0).abs() < 0.063, "{}", a.llc_mean);
        assert!((a.llc_std - 1.0).abs() < 0.05);
        assert!((a.ess / 4000.0 - 1.0).abs() < 0.15, "{}", a.ess);
        assert!((a.llc_sem - a.llc_std / a.ess.sqrt()).abs() < 1e-15);
        assert_eq!(a.grad_evals, 4000);
        assert!((a.ess_per_grad_eval - a.ess / 4000.0).abs() < 1e-15);
        assert_eq!(a.llc_chain_means.len(), 4);
        assert_eq!(a.draws, 1000);
    }

    #[test]
    fn drift_negative_mean_and_divergences_are_flagged() {
        // A linear trend of 4 sds across each chain: the halves differ by 2 sds, which with
        // ~2000 draws per half is tens of sems.
        let mut chains = iid(2, 4, 1000, -1.0);
        for c in &mut chains {
            for (t, x) in c.iter_mut().enumerate() {
                *x += 4.0 * t as f64 / 1000.0;
            }
        }
        let mut run = run_of(chains);
        // 5 divergences in 4000 draws: above 0.1 %.
        run.chains[1].divergences = 5;
        run.chains[2].warnings.push("chain 2: something".into());
        let a = analyze(&run, &HealthChecks::default());
        let has = |s: &str| a.warnings.iter().any(|w| w.contains(s));
        assert!(has("drifts"), "{:?}", a.warnings);
        assert!(
            has("5 divergent transitions in 4000 draws"),
            "{:?}",
            a.warnings
        );
        assert!(has("chain 2: something"));
        assert!(!a.healthy);
        // Mean −1 + 2 = +1 > 0 here; a clearly negative run:
        let b = analyze(&run_of(iid(3, 4, 500, -3.0)), &HealthChecks::default());
        assert!(
            b.warnings.iter().any(|w| w.contains("not a local")),
            "{:?}",
            b.warnings
        );
    }

    #[test]
    fn draws_below_l0_beyond_the_gradients_slack_mean_w_star_is_not_a_minimum() {
        // At a minimum of a one-dimensional singular direction, nβ(L − L0) is like ½z² (λ = ½,
        // many draws near 0); a remaining gradient may lower some draws by ~0.01.
        let at_minimum: Vec<Vec<f64>> = iid(7, 4, 1000, 0.0)
            .into_iter()
            .map(|c| c.into_iter().map(|z| 0.5 * z * z - 0.01).collect())
            .collect();
        let a = analyze(&run_of(at_minimum.clone()), &HealthChecks::default());
        assert!(a.healthy, "{:?}", a.warnings);
        // A saddle: one chain finds the lower region at its end, 0.3 below L0 (as the 6-layer
        // target of the module doc did), while the mean stays positive.
        let mut saddle = at_minimum;
        for x in saddle[2].iter_mut().skip(960) {
            *x = -0.3;
        }
        let b = analyze(&run_of(saddle), &HealthChecks::default());
        assert!(b.llc_mean > 0.0);
        let below: Vec<_> = b
            .warnings
            .iter()
            .filter(|w| w.contains("below L0"))
            .collect();
        assert_eq!(below.len(), 1, "{:?}", b.warnings);
        assert!(below[0].contains("by 0.300 LLC units"), "{below:?}");
        // A negative mean says it once, in its own words.
        let c = analyze(&run_of(iid(3, 4, 500, -3.0)), &HealthChecks::default());
        assert!(
            !c.warnings.iter().any(|w| w.contains("below L0")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn divergences_up_to_a_tenth_of_a_percent_are_counted_but_healthy() {
        // 4 × 1000 draws: 4 divergences is exactly 0.1 %, 5 is above it.
        let mut run = run_of(iid(6, 4, 1000, 5.0));
        run.chains[0].divergences = 3;
        run.chains[3].divergences = 1;
        let a = analyze(&run, &HealthChecks::default());
        assert_eq!(a.divergences, 4);
        assert!(a.healthy, "{:?}", a.warnings);
        run.chains[3].divergences = 2;
        let b = analyze(&run, &HealthChecks::default());
        assert_eq!(b.divergences, 5);
        assert!(!b.healthy);
        assert_eq!(b.warnings.len(), 1, "{:?}", b.warnings);
        assert!(b.warnings[0].contains("divergent"), "{:?}", b.warnings);
    }

    #[test]
    fn run_warnings_come_after_the_chains_and_make_the_run_unhealthy() {
        let mut run = run_of(iid(7, 4, 1000, 5.0));
        run.chains[1].warnings.push("chain 1: something".into());
        run.warnings
            .push("target tgt_x is not a converged minimum".into());
        let a = analyze(&run, &HealthChecks::default());
        assert_eq!(
            a.warnings,
            [
                "chain 1: something",
                "target tgt_x is not a converged minimum"
            ]
        );
        assert!(!a.healthy);
        let v = serde_json::to_value(&a).expect("serializable");
        assert_eq!(v["healthy"], false);
    }

    #[test]
    fn disagreeing_chains_and_short_runs_are_flagged() {
        let mut chains = iid(4, 4, 60, 1.0);
        chains[0].iter_mut().for_each(|x| *x += 3.0);
        let a = analyze(&run_of(chains), &HealthChecks::default());
        let has = |s: &str| a.warnings.iter().any(|w| w.contains(s));
        assert!(has("R-hat"), "{:?}", a.warnings);
        assert!(has("ESS"), "{:?}", a.warnings);
    }

    #[test]
    fn constant_chains_have_an_undefined_r_hat_and_are_flagged() {
        // Two chains that never moved: ESS reads every draw (as ArviZ's does), R-hat is NaN.
        let a = analyze(&run_of(vec![vec![0.0; 150]; 2]), &HealthChecks::default());
        assert!(a.r_hat.is_nan());
        assert!(!a.healthy);
        assert!(
            a.warnings.iter().any(|w| w.contains("R-hat is undefined")),
            "{:?}",
            a.warnings
        );
    }

    /// AR(1) chains x_t = φ x_{t−1} + √(1 − φ²) z_t around `mean` (unit variance), started
    /// in equilibrium: autocorrelated like sampler draws, every chain with the same law.
    fn ar1(seed: u64, chains: usize, draws: usize, phi: f64, mean: f64) -> Vec<Vec<f64>> {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
        let innovation = (1.0 - phi * phi).sqrt();
        (0..chains)
            .map(|_| {
                let mut x: f64 = StandardNormal.sample(&mut r);
                (0..draws)
                    .map(|_| {
                        let z: f64 = StandardNormal.sample(&mut r);
                        x = phi * x + innovation * z;
                        mean + x
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn chi2_normal_score_is_close_to_the_exact_quantiles_and_on_the_safe_side() {
        // χ²_k's 1 − 10⁻⁶ quantiles (scipy.stats.chi2.isf(1e-6, k), k = 1..7).
        let exact = [23.928, 27.631, 30.665, 33.377, 35.888, 38.258, 40.522];
        let z = HealthChecks::default().chain_means_z;
        for (i, q) in exact.iter().enumerate() {
            let k = i + 1;
            let v = 2.0 / (9.0 * k as f64);
            let wilson_hilferty = k as f64 * (1.0 - v + z * v.sqrt()).powi(3);
            let rel = wilson_hilferty / q - 1.0;
            assert!(
                (0.0..0.15).contains(&rel),
                "k = {k}: {wilson_hilferty} vs {q}"
            );
            // At the exact quantile the score is a little under the normal quantile (never
            // over it: no warning where the exact test would not give one).
            let score = chi2_normal_score(*q, k);
            assert!((z - 0.3..=z).contains(&score), "k = {k}: score {score}");
        }
    }

    #[test]
    fn agreeing_autocorrelated_chains_rarely_trip_the_chain_means_test() {
        // 400 runs of 4 AR(1) chains (φ = 0.9, ESS ≈ 5 % of the draws, like HMC on the LLC):
        // at p = 10⁻⁶ the expected count is 4e-4, and even at the ~30× inflated rate measured
        // on real runs (module doc) one flag would be a 1-in-80 event.
        let flagged = (0..400)
            .filter(|&seed| {
                let chains = ar1(1000 + seed, 4, 2000, 0.9, 5.0);
                let (chi2, dof) = chain_means_chi2(&chains).expect("defined");
                chi2_normal_score(chi2, dof) > HealthChecks::default().chain_means_z
            })
            .count();
        assert_eq!(flagged, 0, "{flagged} of 400 agreeing runs flagged");
    }

    #[test]
    fn chains_apart_by_many_sems_are_flagged_even_with_r_hat_below_its_bar() {
        // The case R-hat misses (module doc): 4 × 16,000 draws of sd 1.5 whose chain means sit
        // 0.11–0.17 apart, about 7 sems of a chain (1.5/√16,000 ≈ 0.012).
        let offsets = [-0.17, -0.11, 0.13, 0.15];
        let mut chains = iid(8, 4, 16_000, 5.9);
        for (c, off) in chains.iter_mut().zip(offsets) {
            c.iter_mut().for_each(|x| *x = 5.9 + (*x - 5.9) * 1.5 + off);
        }
        let a = analyze(&run_of(chains), &HealthChecks::default());
        assert!(a.r_hat < 1.01, "R-hat {} should not see it", a.r_hat);
        let flagged: Vec<_> = a
            .warnings
            .iter()
            .filter(|w| w.contains("chain means disagree"))
            .collect();
        assert_eq!(flagged.len(), 1, "{:?}", a.warnings);
        assert!(!a.healthy);
    }

    #[test]
    fn nan_serializes_as_null() {
        let mut chains = iid(5, 2, 50, 1.0);
        chains[0][3] = f64::NAN;
        let mut run = run_of(chains);
        run.chains[0].tuned.insert("step_size".into(), 0.1);
        let a = analyze(&run, &HealthChecks::default());
        assert!(a.warnings.iter().any(|w| w.contains("NaN")));
        let v = serde_json::to_value(&a).expect("serializable");
        assert!(v["llc_mean"].is_null());
        assert!(v["ess_bulk"].is_null());
        assert!(v["r_hat"].is_null());
        assert!(v["acceptance_rate"].is_null());
        assert!(v["llc_chain_means"][0].is_null());
        assert!(v["llc_chain_means"][1].is_number());
        // Chain 1 has no tuned step size: null, not a made-up value.
        assert_eq!(v["tuned"]["step_size"][0], 0.1);
        assert!(v["tuned"]["step_size"][1].is_null());
    }

    #[test]
    fn tuned_counts_are_written_as_integers_and_the_rest_as_floats() {
        let mut run = run_of(iid(6, 2, 50, 1.0));
        for (c, steps) in run.chains.iter_mut().zip([10.0, 2.5]) {
            c.tuned.insert("num_integration_steps".into(), steps);
            c.tuned.insert("step_size".into(), 1.0);
        }
        run.chains[0].tuned.insert("batch_size".into(), 256.0);
        let text = serde_json::to_string(&analyze(&run, &HealthChecks::default())).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let tuned = &v["tuned"];
        assert!(tuned["num_integration_steps"][0].is_u64(), "{tuned}");
        assert!(tuned["batch_size"][0].is_u64(), "{tuned}");
        // Chain 1 has no batch size: null. A fractional count is not rounded: it stays a float.
        assert!(tuned["batch_size"][1].is_null(), "{tuned}");
        assert_eq!(tuned["num_integration_steps"][1].as_f64(), Some(2.5));
        // A step size that happens to be whole is still a float, so a column keeps one type.
        assert!(tuned["step_size"][0].is_f64(), "{tuned}");
        assert!(
            text.contains("\"num_integration_steps\":[10,2.5]"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_run_does_not_panic() {
        let a = analyze(&SamplerRun::default(), &HealthChecks::default());
        assert!(a.llc_mean.is_nan());
        assert!(!a.warnings.is_empty());
        let a = analyze(&run_of(vec![vec![], vec![]]), &HealthChecks::default());
        assert!(a.warnings.iter().any(|w| w.contains("no LLC draws")));
    }
}
