//! The three-stage tuning of MCLMC's step size ε and decoherence length L, after BlackJAX's
//! `mclmc_find_L_and_step_size`.
//!
//! Input: a [`Kernel`] at w*, the [`MclmcConfig`] and a [`TuningStart`]. Output: tuned L and ε
//! (and, with `diagonal_preconditioning`, the kernel's σ), plus the step size of every tuning
//! step for plots. Tuning steps move the chain but are discarded. As in BlackJAX, the number of
//! steps of stage k is ⌊frac_tune_k · num_tuning_steps⌋ (BlackJAX's `num_steps`).
//!
//! 1. Stages 1 and 2 run the kernel while predicting ε from each step's energy change ΔE, using
//!    Var\[ΔE\]/d ∝ ε⁶: a decaying (over `num_effective_samples`) weighted average of
//!    ξ/ε⁶ with ξ = ΔE²/(d·desired_energy_var) gives ε = (avg)^(−1/6). Each step's weight
//!    exp(−½(ln ξ / (6·trust_in_estimate))²) discounts steps far from the target. A non-finite
//!    step caps ε at 0.8 × its value.
//! 2. During stage 2 the positions' weighted (by ε) mean and variance are accumulated; at its
//!    end L = √(Σ var). With `diagonal_preconditioning`, σ = √var instead, L = √d (the width of
//!    the whitened posterior is 1) and ε is re-predicted for ⌊n₂/3⌋ more steps.
//! 3. Stage 3 runs ⌊frac_tune3·num_tuning_steps⌋ steps with the tuned values and sets
//!    L = 0.4 · ε · mean over coordinates of (steps / ESS), each coordinate's ESS taken over
//!    its whole chain of stage-3 positions as BlackJAX does (not split in halves, which until
//!    2026-12-04 made L ~1.8× BlackJAX's: see [`l_from_autocorrelation`] for the figures).
//!
//! Differences from BlackJAX, all about starting values and bookkeeping, none about the
//! algorithm: tuning starts from ε and L scaled to the posterior's width (see
//! [`TuningStart::from_width`]) instead of √p; ε is rescaled into whitened units when the
//! preconditioner is set (BlackJAX leaves it to the predictor); stage-2 moments are
//! accumulated in f64 around w* (exact for f32 chains); stage 3's ESS is averaged over at most
//! [`MAX_ESS_COORDS`] evenly spaced coordinates to bound memory for large networks.

use rand::Rng;

use super::mclmc_kernel::Kernel;
use super::mclmc_settings::MclmcConfig;
use crate::diagnostics::ess_unsplit;
use crate::numeric::Real;
use crate::posterior::LossModel;

/// Stage 3's L is this multiple of ε·steps/ESS (BlackJAX's `Lfactor`).
const L_FACTOR: f64 = 0.4;
/// A non-finite step caps ε at this fraction of the step size that produced it.
const NAN_STEP_SHRINK: f64 = 0.8;
/// Stage 3 estimates ESS on at most this many coordinates (its position buffer is
/// steps × coordinates f64s; the mean of steps/ESS is well estimated from a thousand).
pub const MAX_ESS_COORDS: usize = 1024;
/// Starting ε as a fraction of the posterior's per-coordinate width.
const START_STEP_FRACTION: f64 = 1.0;

/// Where tuning starts.
#[derive(Debug, Clone, Copy)]
pub struct TuningStart {
    pub l: f64,
    pub step_size: f64,
}

impl TuningStart {
    /// Start values for a posterior of per-coordinate width `width` in `dim` dimensions:
    /// ε = width (a step the size of the narrowest typical direction cannot overshoot it by
    /// much, and the ε⁶ predictor grows it within a few steps) and L = width·√dim (the radius
    /// of the typical set, BlackJAX's √d for unit width).
    pub fn from_width(width: f64, dim: usize) -> Self {
        TuningStart {
            l: width * (dim as f64).sqrt(),
            step_size: START_STEP_FRACTION * width,
        }
    }
}

/// Tuning's result.
#[derive(Debug, Clone)]
pub struct Tuned {
    pub l: f64,
    pub step_size: f64,
    /// ε of every tuning step, in order.
    pub step_size_trace: Vec<f64>,
}

/// The ε⁶ step-size predictor of stages 1 and 2.
struct Predictor {
    decay: f64,
    dim: f64,
    desired_energy_var: f64,
    trust: f64,
    time: f64,
    x_avg: f64,
    step_max: f64,
}

impl Predictor {
    fn new(cfg: &MclmcConfig, dim: usize) -> Self {
        let n_eff = cfg.num_effective_samples;
        Predictor {
            decay: (n_eff - 1.0) / (n_eff + 1.0),
            dim: dim as f64,
            desired_energy_var: cfg.desired_energy_var,
            trust: cfg.trust_in_estimate,
            time: 0.0,
            x_avg: 0.0,
            step_max: f64::INFINITY,
        }
    }

    /// Takes one step's outcome (made with step size `eps`); returns the next step size.
    fn update(&mut self, eps: f64, energy_change: f64, ok: bool) -> f64 {
        if !ok {
            self.step_max = NAN_STEP_SHRINK * eps;
        }
        let de = if ok { energy_change } else { 0.0 };
        // The 1e-8 keeps ln ξ finite for a step with no energy error at all.
        let xi = de * de / (self.dim * self.desired_energy_var) + 1e-8;
        let weight = (-0.5 * (xi.ln() / (6.0 * self.trust)).powi(2)).exp();
        self.x_avg = self.decay * self.x_avg + weight * xi / eps.powi(6);
        self.time = self.decay * self.time + weight;
        let next = (self.x_avg / self.time).powf(-1.0 / 6.0);
        let next = if next.is_finite() && next > 0.0 {
            next
        } else {
            eps
        };
        next.min(self.step_max)
    }
}

/// Weighted first and second moments of the positions (around w*), in f64.
struct Moments {
    weight: f64,
    s1: Vec<f64>,
    s2: Vec<f64>,
}

impl Moments {
    fn new(dim: usize) -> Self {
        Moments {
            weight: 0.0,
            s1: vec![0.0; dim],
            s2: vec![0.0; dim],
        }
    }

    fn add<F: Real>(&mut self, x: &[F], centre: &[F], w: f64) {
        self.weight += w;
        for (((s1, s2), &xi), &ci) in self.s1.iter_mut().zip(&mut self.s2).zip(x).zip(centre) {
            let v = xi.f64() - ci.f64();
            *s1 += w * v;
            *s2 += w * v * v;
        }
    }

    /// Per-coordinate variances written into `out`; false when nothing was accumulated.
    fn variances(&self, out: &mut [f64]) -> bool {
        if self.weight.is_nan() || self.weight <= 0.0 {
            return false;
        }
        for ((o, &s1), &s2) in out.iter_mut().zip(&self.s1).zip(&self.s2) {
            let m = s1 / self.weight;
            *o = (s2 / self.weight - m * m).max(0.0);
        }
        true
    }
}

/// Stage 3's L: [`L_FACTOR`] · ε · the mean over coordinates of steps / ESS, where `positions`
/// holds one column of `steps` positions per coordinate. `None` when no coordinate has a
/// usable ESS (the caller keeps the L it had).
///
/// The ESS is of each column whole, as BlackJAX's `effective_sample_size(samples[None])`
/// computes it, not of its two halves as `arviz.ess(method="mean")` does. Until 2026-12-04 it
/// was the split one, which a slow drift within 200–2,000 steps lowers a lot (a chain shifted
/// half way: 17 effective draws whole, 3 split), so L came out about 1.8× BlackJAX's on the
/// small tanh model and the deep linear networks. Measured on the 2-core Zen 3 VM, same
/// budgets, old → new: small tanh model (4 → [8, 8] → 1, n = 1,000, 2,000 tuning steps, 4,000
/// draws, 8 seeds) L 14–16 → 8–9 (BlackJAX 8.3–9.0), bulk ESS 762–1,324 → 1,607–1,953, healthy
/// runs 6 → 8 of 8, mean λ̂ 5.245 → 5.144 (HMC, 4 seeds of 3,000 draws: 5.186 ± 0.013).
/// `lambda-hat validate`, 20 seeds, trained deep linear networks at the preset's budgets:
/// median ESS 2,083 → 3,055 (`[4,3,2]`), 1,976 → 3,197 (`[3,3,3]`), 1,031 → 1,877 (`[3,3,3,3]`),
/// 907 → 1,556 (`[4,3,3,3,2]`); mean error −2.2 → −2.1 %, −0.3 → −1.3 %, −1.9 → −2.4 %, −2.0 →
/// −3.8 % (worst seed −5.3 → −6.6 %; tolerance 10 %). Halving `desired_energy_var` left the
/// last at −3.8 %, which we first read as L's doing. Measured since (2026-12-05, 20 seeds): it
/// is ε's. At L = 3.4, ε = 0.02 / 0.015 / 0.0125 / 0.01 gave −2.7 / −1.2 / −0.8 / +0.5 %; at
/// ε = 0.02, L = 1.5 / 3.4 / 7 gave −3.0 / −2.7 / −2.4 %. The step predictor just barely
/// shortens ε there (README: `desired_energy_var`). The benchmark's deep
/// linear target (`scripts/bench-ess.sh`, 10,000 draws, seeds 0–6): mean λ̂ 3.947 → 3.897
/// (HMC 4.071 ± 0.082), bulk ESS 489–787 → 607–1,028, healthy 7 → 6 of 7 (R-hat 1.012).
fn l_from_autocorrelation(positions: &[f64], steps: usize, eps: f64) -> Option<f64> {
    let mut sum = 0.0;
    let mut used = 0usize;
    for col in positions.chunks_exact(steps) {
        let ess = ess_unsplit(col);
        if ess.is_finite() && ess > 0.0 {
            sum += steps as f64 / ess;
            used += 1;
        }
    }
    (used > 0).then(|| L_FACTOR * eps * sum / used as f64)
}

/// Runs the three tuning stages on `k` (moving it) and returns the tuned L and ε.
pub(super) fn tune<F: Real, M: LossModel<F>, R: Rng>(
    k: &mut Kernel<'_, '_, F, M>,
    cfg: &MclmcConfig,
    start: TuningStart,
    rng: &mut R,
) -> Tuned {
    let total = cfg.num_tuning_steps as f64;
    let n1 = (cfg.frac_tune1 * total) as usize;
    let n2 = (cfg.frac_tune2 * total) as usize;
    let n3 = (cfg.frac_tune3 * total) as usize;
    let dim = k.dim();
    let precond = cfg.diagonal_preconditioning && n2 > 0;
    let n_extra = if precond { n2 / 3 } else { 0 };
    let mut trace = Vec::with_capacity(n1 + n2 + n_extra + n3);
    let w_star = &k.posterior().w_star;

    // ---- stages 1 and 2: predict ε; in stage 2 also accumulate position moments
    let (mut l, mut eps) = (start.l, start.step_size);
    let mut pred = Predictor::new(cfg, dim);
    let mut moments = Moments::new(dim);
    for i in 0..n1 + n2 {
        trace.push(eps);
        let s = k.step(eps, l, rng);
        if i >= n1 && s.ok {
            moments.add(&k.x, w_star, eps);
        }
        eps = pred.update(eps, s.energy_change, s.ok);
    }
    let mut var = vec![0.0; dim];
    if n2 > 0 && moments.variances(&mut var) {
        let total_var: f64 = var.iter().sum();
        if precond && total_var > 0.0 && total_var.is_finite() {
            // Whiten: σ = posterior std; a coordinate that did not move keeps a small floor so
            // it can still move later.
            let floor = 1e-6 * total_var / dim as f64;
            for (s, &v) in k.sigma.iter_mut().zip(&var) {
                *s = F::of(v.max(floor).sqrt());
            }
            let rms_sigma = (var.iter().map(|&v| v.max(floor)).sum::<f64>() / dim as f64).sqrt();
            eps /= rms_sigma;
            l = (dim as f64).sqrt();
            let mut pred = Predictor::new(cfg, dim);
            for _ in 0..n_extra {
                trace.push(eps);
                let s = k.step(eps, l, rng);
                eps = pred.update(eps, s.energy_change, s.ok);
            }
        } else if total_var > 0.0 && total_var.is_finite() {
            l = total_var.sqrt();
        }
    }

    // ---- stage 3: L from the effective sample size of the positions
    if n3 > 0 {
        let coords = dim.min(MAX_ESS_COORDS);
        let mut positions = vec![0.0_f64; coords * n3];
        for t in 0..n3 {
            trace.push(eps);
            k.step(eps, l, rng);
            for j in 0..coords {
                let i = j * dim / coords;
                positions[j * n3 + t] = k.x[i].f64() - w_star[i].f64();
            }
        }
        if let Some(tuned) = l_from_autocorrelation(&positions, n3, eps) {
            l = tuned;
        }
    }

    Tuned {
        l,
        step_size: eps,
        step_size_trace: trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::ess_mean;

    /// `tests/fixtures/<name>` parsed as JSON.
    fn fixture(name: &str) -> serde_json::Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
    }

    #[test]
    fn stage_three_l_uses_the_whole_chain_ess_as_blackjax_does() {
        // Coordinate 1: the first AR(1) chain (ρ = 0.9, 1,000 draws) of the ArviZ reference,
        // unsplit ESS ~54.9 by ArviZ (BlackJAX agrees to 1e-3). Coordinate 2: the second one,
        // shifted by one standard deviation from draw 500 on (a slow drift within stage 3):
        // ArviZ gives it ~16.4 effective draws whole, ~3.7 split in halves.
        let chains = &fixture("arviz_diagnostics.json")["cases"][1];
        let ess = &fixture("ess_unsplit.json")["cases"][1];
        assert_eq!(chains["name"], "ar1_0.9_4x1000");
        assert_eq!(ess["name"], "ar1_0.9_4x1000");
        let column = |i: usize| -> Vec<f64> {
            serde_json::from_value(chains["chains"][i].clone()).expect("a chain")
        };
        let steps = 1000;
        let mut drifting = column(1);
        let sd = {
            let m = drifting.iter().sum::<f64>() / steps as f64;
            (drifting.iter().map(|x| (x - m).powi(2)).sum::<f64>() / steps as f64).sqrt()
        };
        drifting[steps / 2..].iter_mut().for_each(|x| *x += sd);
        let positions = [column(0), drifting.clone()].concat();
        let eps = 0.3;

        let first = steps as f64 / ess["ess_unsplit"][0].as_f64().expect("a number");
        let second = steps as f64 / ess_unsplit(&drifting);
        let want = L_FACTOR * eps * (first + second) / 2.0;
        let got = l_from_autocorrelation(&positions, steps, eps).expect("usable ESS");
        // ess_unsplit matches ArviZ to 1e-6 relative (diagnostics' tests), and so does L.
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "L {got}, from ArviZ's ESS {want}"
        );
        // With the split ESS L would be 17.2 here, 3.6× longer: that estimator is not in use.
        let split = L_FACTOR
            * eps
            * (steps as f64 / ess_mean(&[column(0)]) + steps as f64 / ess_mean(&[drifting]))
            / 2.0;
        assert!(got < 0.5 * split, "L {got} vs split-ESS L {split}");
    }

    #[test]
    fn stage_three_l_skips_unusable_coordinates() {
        let steps = 8;
        let good: Vec<f64> = (0..steps).map(|t| ((t * 7) % 5) as f64).collect();
        let nan = vec![f64::NAN; steps];
        let alone = l_from_autocorrelation(&good, steps, 0.5).expect("one usable column");
        let with_nan = l_from_autocorrelation(&[good.clone(), nan.clone()].concat(), steps, 0.5);
        assert_eq!(with_nan, Some(alone));
        assert_eq!(l_from_autocorrelation(&nan, steps, 0.5), None);
    }
}
