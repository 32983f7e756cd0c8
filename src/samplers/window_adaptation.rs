//! Stan's windowed warmup for HMC: which warmup step adapts what, dual averaging of the step
//! size, and Welford variances for the diagonal inverse mass matrix.
//!
//! The HMC chain driver ([`super::hmc`]) asks [`schedule`] for the stage of every warmup step
//! before its loop, feeds each step's acceptance probability to [`DualAveraging`] and, in slow
//! windows, each position to [`DiagWelford`]; at the end of a slow window it turns the Welford
//! variances into a new inverse mass matrix. Nothing here allocates after construction.
//!
//! The window layout follows Stan (and BlackJAX's `build_schedule`): an initial fast window of
//! 75 steps, slow windows that start at 25 steps and double, each ending with a metric update,
//! and a final fast window of 50 steps; when warmup is too short for these sizes they become
//! 15 % / 75 % / 10 % of it, and below 20 steps only the step size is adapted.

use crate::numeric::Real;

/// What one warmup step adapts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Step size only.
    Fast,
    /// Step size, and the position feeds the variance estimate; `window_end` marks the last
    /// step of a slow window, after which the inverse mass matrix is recomputed.
    Slow { window_end: bool },
}

const INITIAL_BUFFER: usize = 75;
const FIRST_WINDOW: usize = 25;
const FINAL_BUFFER: usize = 50;
/// Below this many warmup steps there is too little to estimate variances from.
const MIN_WINDOWED_WARMUP: usize = 20;

/// The stage of warmup step `i` for `i in 0..warmup`; `adapt_mass_matrix = false` makes every
/// step fast.
pub fn schedule(warmup: usize, adapt_mass_matrix: bool) -> Vec<Stage> {
    let mut out = Vec::with_capacity(warmup);
    if !adapt_mass_matrix || warmup < MIN_WINDOWED_WARMUP {
        out.resize(warmup, Stage::Fast);
        return out;
    }
    let (mut initial, mut first, mut last) = (INITIAL_BUFFER, FIRST_WINDOW, FINAL_BUFFER);
    if initial + first + last > warmup {
        // Stan's proportions for short warmups.
        initial = warmup * 15 / 100;
        last = warmup / 10;
        first = warmup - initial - last;
    }
    out.resize(initial, Stage::Fast);
    let slow_end = warmup - last;
    let (mut start, mut size) = (initial, first);
    while start < slow_end {
        // A window that would leave less than twice its size before the final buffer absorbs
        // the rest, so no slow window is shorter than its predecessor.
        let this = if 3 * size <= slow_end - start {
            size
        } else {
            slow_end - start
        };
        for k in 0..this {
            out.push(Stage::Slow {
                window_end: k + 1 == this,
            });
        }
        start += this;
        size = 2 * this;
    }
    out.resize(warmup, Stage::Fast);
    out
}

/// Nesterov dual averaging of log(step size) toward a target acceptance probability
/// (Hoffman & Gelman 2014, §3.2.1).
#[derive(Debug, Clone)]
pub struct DualAveraging {
    target: f64,
    mu: f64,
    log_step: f64,
    log_step_avg: f64,
    error_avg: f64,
    t: f64,
}

/// Adaptation regularization γ: 0.15 instead of Stan's 0.05 (see the HMC module doc: static
/// HMC's single-point acceptance is too noisy for Stan's gain). t0 (iteration offset) and κ
/// (relaxation exponent) are Stan's.
const DA_GAMMA: f64 = 0.15;
const DA_T0: f64 = 10.0;
const DA_KAPPA: f64 = 0.75;

impl DualAveraging {
    /// Starts (or restarts) the averaging at `step_size`, shrinking toward log(10·step_size).
    pub fn new(step_size: f64, target: f64) -> Self {
        DualAveraging {
            target,
            mu: (10.0 * step_size).ln(),
            log_step: step_size.ln(),
            log_step_avg: 0.0,
            error_avg: 0.0,
            t: 0.0,
        }
    }

    /// Records one acceptance probability; returns the step size to use next.
    pub fn update(&mut self, accept_prob: f64) -> f64 {
        // A NaN acceptance (a broken transition) counts as a rejection.
        let a = if accept_prob.is_finite() {
            accept_prob.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.t += 1.0;
        let w = 1.0 / (self.t + DA_T0);
        self.error_avg = (1.0 - w) * self.error_avg + w * (self.target - a);
        self.log_step = self.mu - self.t.sqrt() / DA_GAMMA * self.error_avg;
        let eta = self.t.powf(-DA_KAPPA);
        self.log_step_avg = eta * self.log_step + (1.0 - eta) * self.log_step_avg;
        self.log_step.exp()
    }

    /// The step size the current (noisy) iterate proposes.
    pub fn current(&self) -> f64 {
        self.log_step.exp()
    }

    /// The averaged step size: the value to sample with once adaptation stops. Falls back to
    /// the current iterate before the first update.
    pub fn averaged(&self) -> f64 {
        if self.t > 0.0 {
            self.log_step_avg.exp()
        } else {
            self.current()
        }
    }
}

/// Welford's running per-coordinate variance of positions, kept in f64 around a fixed centre
/// (w*) so that f32 chains and parameters far from 0 lose no precision.
#[derive(Debug, Clone)]
pub struct DiagWelford {
    n: usize,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl DiagWelford {
    pub fn new(dim: usize) -> Self {
        DiagWelford {
            n: 0,
            mean: vec![0.0; dim],
            m2: vec![0.0; dim],
        }
    }

    /// Adds the position `x` (measured from `centre`).
    pub fn add<F: Real>(&mut self, x: &[F], centre: &[F]) {
        self.n += 1;
        let n = self.n as f64;
        for (((m, s), &xi), &ci) in self.mean.iter_mut().zip(&mut self.m2).zip(x).zip(centre) {
            let v = xi.f64() - ci.f64();
            let delta = v - *m;
            *m += delta / n;
            *s += delta * (v - *m);
        }
    }

    /// Writes Stan's regularized variances (n/(n+5))·var + 1e-3·5/(n+5) into `inv_mass` and
    /// restarts the estimate (Stan's windows are memoryless). With fewer than 2 samples the
    /// variance is undefined and `inv_mass` is left alone.
    pub fn finish_window<F: Real>(&mut self, inv_mass: &mut [F]) {
        let n = self.n as f64;
        if self.n >= 2 {
            for (out, &s) in inv_mass.iter_mut().zip(&self.m2) {
                let var = s / (n - 1.0);
                *out = F::of((n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0)));
            }
        }
        self.n = 0;
        self.mean.iter_mut().for_each(|m| *m = 0.0);
        self.m2.iter_mut().for_each(|s| *s = 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window_lengths(s: &[Stage]) -> Vec<usize> {
        let mut out = vec![];
        let mut run = 0;
        for st in s {
            if let Stage::Slow { window_end } = st {
                run += 1;
                if *window_end {
                    out.push(run);
                    run = 0;
                }
            }
        }
        out
    }

    #[test]
    fn stan_schedule_for_1000_steps() {
        // Stan's documented layout for 1000 warmup iterations: 75 fast, slow windows of 25, 50,
        // 100, 200 and 500 (the last absorbs the remainder), 50 fast.
        let s = schedule(1000, true);
        assert_eq!(s.len(), 1000);
        assert!(s[..75].iter().all(|x| *x == Stage::Fast));
        assert!(s[950..].iter().all(|x| *x == Stage::Fast));
        assert_eq!(window_lengths(&s), vec![25, 50, 100, 200, 500]);
    }

    #[test]
    fn short_warmups_shrink_or_drop_the_windows() {
        // 100 < 75 + 25 + 50: 15 fast, one slow window of 75, 10 fast.
        let s = schedule(100, true);
        assert_eq!(window_lengths(&s), vec![75]);
        assert!(s[..15].iter().all(|x| *x == Stage::Fast));
        assert!(s[90..].iter().all(|x| *x == Stage::Fast));
        assert!(schedule(19, true).iter().all(|x| *x == Stage::Fast));
        assert!(schedule(500, false).iter().all(|x| *x == Stage::Fast));
        assert!(schedule(0, true).is_empty());
    }

    #[test]
    fn dual_averaging_moves_toward_the_target() {
        // Acceptance 1 means the step is too small: the step size must grow; 0 means shrink.
        let mut up = DualAveraging::new(0.1, 0.8);
        let mut down = DualAveraging::new(0.1, 0.8);
        for _ in 0..50 {
            up.update(1.0);
            down.update(0.0);
        }
        assert!(up.averaged() > 0.1);
        assert!(down.averaged() < 0.1);
    }

    #[test]
    fn dual_averaging_finds_the_step_of_a_known_acceptance_curve() {
        // A made-up acceptance curve a(ε) = exp(−ε²): the target 0.8 is met at
        // ε = sqrt(ln(1/0.8)) ≈ 0.4724. After 2000 noiseless updates the average is within 2 %
        // (the averaging weight t^−0.75 leaves an O(t^−0.25)-shrinking memory of the start).
        let mut da = DualAveraging::new(1.0, 0.8);
        let mut eps = da.current();
        for _ in 0..2000 {
            eps = da.update((-eps * eps).exp());
        }
        let want = (1.0_f64 / 0.8).ln().sqrt();
        assert!(
            (da.averaged() / want - 1.0).abs() < 0.02,
            "{}",
            da.averaged()
        );
    }

    #[test]
    fn welford_gives_regularized_sample_variance() {
        let mut w = DiagWelford::new(2);
        let centre = [10.0_f64, 0.0];
        let xs = [[11.0, 2.0], [13.0, 2.0], [12.0, 2.0], [14.0, 2.0]];
        for x in &xs {
            w.add(&x[..], &centre[..]);
        }
        assert_eq!(w.n, 4);
        let mut inv = [0.0_f64; 2];
        w.finish_window(&mut inv);
        // Sample variance of 1,3,2,4 is 5/3; of a constant 0. Then Stan's shrinkage, n = 4.
        let reg = |var: f64| (4.0 / 9.0) * var + 1e-3 * 5.0 / 9.0;
        assert!((inv[0] - reg(5.0 / 3.0)).abs() < 1e-14);
        assert!((inv[1] - reg(0.0)).abs() < 1e-14);
        assert_eq!(w.n, 0);
    }
}
