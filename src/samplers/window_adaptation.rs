//! HMC's and NUTS's windowed warmup: which warmup step adapts what, dual averaging of the step
//! size, Welford variances for the diagonal inverse mass matrix, and the fixed-step calibration
//! that ends warmup.
//!
//! The HMC and NUTS drivers ([`super::hmc`], [`super::nuts`]) ask [`schedule`] for the stage of
//! every warmup step before their loop, feed each step's (group-mean) acceptance probability to
//! [`DualAveraging`] or, in calibration windows, to an [`AcceptanceWindow`], and in slow windows
//! each position to [`DiagWelford`]; at the end of a slow window they turn the Welford variances
//! into a new inverse mass matrix, at the end of a calibration window they correct the step size
//! with [`calibrated_step_size`]. Nothing here allocates after construction.
//!
//! [`windowed_warmup`] is that driver, shared by HMC and NUTS: it sees a chain only through
//! [`WarmupWalker`] (one warmup transition at a given step size, Stan's step-size search, the
//! position and the inverse mass matrix), so the two samplers differ only in their transitions.
//!
//! Layout: the first 60 % of warmup follows Stan (and BlackJAX's `build_schedule`): an
//! initial fast window of 75 steps, slow windows that start at 25 steps and double, each
//! ending with a metric update, and a final fast window of 50 steps; when that part is too
//! short for these sizes they become 15 % / 75 % / 10 % of it, and below 20 steps only the step
//! size is adapted. The last 40 % is two calibration windows, 10 % and 30 % of warmup (the
//! HMC module doc says why). Warmups under 200 steps have no calibration windows.

use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use crate::invalid::{Invalid, count, fraction, positive};
use crate::numeric::Real;

/// How HMC's (and NUTS's) warmup adapts the step size and inverse mass matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Adaptation {
    /// All chains warm up in lockstep and share what they learn: dual averaging sees their
    /// mean acceptance, the variances all their positions.
    #[default]
    Pooled,
    /// Each chain adapts alone, as in Stan.
    PerChain,
}

impl Adaptation {
    pub(super) fn is_default(&self) -> bool {
        *self == Adaptation::default()
    }
}

/// The settings HMC and NUTS share, as their `validate` checks them.
pub(super) struct MetropolisSettings {
    pub draws: usize,
    pub step_size: f64,
    pub target_acceptance: f64,
    pub max_energy_error: f64,
}

impl MetropolisSettings {
    pub(super) fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        let p = |k: &str| format!("{prefix}.{k}");
        count(out, &p("draws"), self.draws);
        positive(out, &p("step_size"), self.step_size);
        fraction(out, &p("target_acceptance"), self.target_acceptance, true);
        positive(out, &p("max_energy_error"), self.max_energy_error);
    }
}

/// What to change when an HMC or NUTS chain explodes or gets stuck: a fixed step size is too
/// large; an adapted one meets regions stiffer than where it was adapted. `alternative` is
/// appended to the advice for the adapted case (HMC suggests NUTS).
pub(super) fn step_size_fix(
    adapt_step_size: bool,
    warmup: usize,
    step_size: f64,
    target_acceptance: f64,
    alternative: &str,
) -> String {
    // A higher target means smaller steps; past 0.95, the next sensible one is 0.99.
    let higher = if target_acceptance < 0.95 { 0.95 } else { 0.99 };
    if adapt_step_size && warmup == 0 {
        // Nothing was adapted: the chains ran at the starting step, which was too large.
        format!(
            "warmup is 0, so the step size was never adapted and the starting step_size \
             {step_size:.3e} is too large for this posterior: give a warmup (the preset's, or at \
             least a few hundred transitions)"
        )
    } else if adapt_step_size && warmup < MIN_CALIBRATED_WARMUP {
        // A short warmup has no calibration windows, and its step-size search may not settle.
        format!(
            "warmup is only {warmup} transitions, too few for the step size to settle: raise \
             warmup (at least {MIN_CALIBRATED_WARMUP}, or the preset's), or target_acceptance \
             (e.g. {higher}){alternative}"
        )
    } else if adapt_step_size {
        format!(
            "the adapted step size is too large for parts of this posterior: raise \
             target_acceptance (e.g. {higher}) or posterior.gamma{alternative}"
        )
    } else {
        format!(
            "step_size {step_size:.3e} is fixed (adapt_step_size: false) and too large for this \
             posterior: lower it, or set adapt_step_size: true"
        )
    }
}

/// One chain as the warmup driver sees it. HMC's and NUTS's walkers implement it.
pub trait WarmupWalker<F: Real>: Send {
    /// One warmup transition at step size `eps`: the walker moves, records the transition in
    /// its warmup traces, and keeps its acceptance probability for [`Self::last_accept`].
    /// `shared` is the group's [`Self::lockstep_draw`] for this step (`None` for a group of one,
    /// or a walker that shares nothing): it sets what the transition costs, the same for
    /// every chain of the step.
    fn warmup_transition(&mut self, eps: f64, shared: Option<f64>);
    /// A uniform draw in [0, 1) from this walker's RNG that every chain of a lockstep step uses
    /// to set its cost (HMC: the jittered trajectory length), or `None` (and no draw) when the
    /// cost is not drawn (NUTS).
    ///
    /// Why: the group waits at every step for its slowest thread. With a length drawn per
    /// chain (5 ..= 15 steps for L = 10), 4 chains on 2 threads waited for the thread whose two
    /// chains drew the longer trajectories. Small tanh model, HMC, warmup 500, draws 1,000,
    /// three alternating runs of each build, gradients/s: pooled 53,004 / 50,501 / 51,691 with a
    /// length per chain, 55,559 / 54,916 / 53,474 with one per step (median +6 %); `per_chain`
    /// 56,575 / 56,428 / 55,436 either way. With a chain count that does not divide among the
    /// threads (3 chains on 2) a thread still waits, for a whole chain. Warmup transitions are
    /// discarded; the draws keep a length per chain.
    fn lockstep_draw(&mut self) -> Option<f64>;
    /// The acceptance probability (HMC) or statistic (NUTS) of the last warmup transition.
    fn last_accept(&self) -> f64;
    /// Stan's search for a reasonable step size, starting from `eps`; keeps the answer for
    /// [`Self::searched`].
    fn search_step_size(&mut self, eps: f64);
    fn searched(&self) -> f64;
    fn position(&self) -> &[F];
    fn inv_mass(&self) -> &[F];
    fn inv_mass_mut(&mut self) -> &mut [F];
    /// Warmup is over: the draws use step size `eps`.
    fn finish_warmup(&mut self, eps: f64);
}

/// The settings warmup reads from an HMC or NUTS config.
#[derive(Debug, Clone, Copy)]
pub struct WarmupSettings {
    pub warmup: usize,
    /// The starting step size.
    pub step_size: f64,
    pub target_acceptance: f64,
    pub adapt_step_size: bool,
    pub adapt_mass_matrix: bool,
    /// Dual averaging's regularization γ ([`DualAveraging::with_gamma`]).
    pub dual_averaging_gamma: f64,
}

/// Windowed warmup of a group of chains that share one step size and one inverse mass matrix:
/// the step size comes from dual averaging of the group's mean acceptance, then from the
/// calibration windows' corrections; every slow window's variances come from all the group's
/// positions (measured from `centre`, w*). Ends with [`WarmupWalker::finish_warmup`] on every
/// chain. The group's chains move in parallel; every mean is taken in chain order, so the
/// result does not depend on the thread count.
pub fn windowed_warmup<F: Real, W: WarmupWalker<F>>(
    settings: &WarmupSettings,
    centre: &[F],
    group: &mut [W],
) {
    let s = settings;
    let adapt_step = s.adapt_step_size && s.warmup > 0;
    let new_da = |eps| DualAveraging::with_gamma(eps, s.target_acceptance, s.dual_averaging_gamma);
    let mut eps = s.step_size;
    if adapt_step {
        eps = search_step_size(group, eps);
    }
    let mut da = new_da(eps);
    let mut welford = DiagWelford::new(centre.len());
    let mut calibrating = false;
    let mut window = AcceptanceWindow::default();
    for stage in schedule(s.warmup, s.adapt_mass_matrix, adapt_step) {
        if matches!(stage, Stage::Calibrate { .. }) && !calibrating {
            // Dual averaging is done: from here on the step size only changes between
            // calibration windows.
            calibrating = true;
            eps = da.averaged();
        }
        let shared = match group {
            [_] => None,
            [first, ..] => first.lockstep_draw(),
            [] => unreachable!("a group is never empty"),
        };
        for_each_walker(group, |w| w.warmup_transition(eps, shared));
        let mean = group.iter().map(|w| w.last_accept()).sum::<f64>() / group.len() as f64;
        if adapt_step && !calibrating {
            eps = da.update(mean);
        }
        match stage {
            Stage::Fast => {}
            Stage::Slow { window_end } => {
                for w in group.iter() {
                    welford.add(w.position(), centre);
                }
                if window_end {
                    let (first, rest) = group.split_first_mut().expect("a group is never empty");
                    welford.finish_window(first.inv_mass_mut());
                    for w in rest {
                        w.inv_mass_mut().copy_from_slice(first.inv_mass());
                    }
                    if adapt_step {
                        eps = search_step_size(group, da.averaged());
                        da = new_da(eps);
                    }
                }
            }
            Stage::Calibrate { window_end } => {
                window.add(mean);
                if window_end {
                    eps = calibrated_step_size(eps, window.take_mean(), s.target_acceptance);
                }
            }
        }
    }
    if adapt_step && !calibrating {
        eps = da.averaged();
    }
    for w in group.iter_mut() {
        w.finish_warmup(eps);
    }
}

/// Runs `f` on every walker of the group, in parallel when there is more than one (a group of
/// one, `per_chain`, is already on its own rayon task).
fn for_each_walker<W: Send>(group: &mut [W], f: impl Fn(&mut W) + Sync + Send) {
    match group {
        [one] => f(one),
        _ => group.par_iter_mut().for_each(f),
    }
}

/// Every chain of the group searches a reasonable step size from `eps`; the group takes the
/// geometric mean of their answers.
fn search_step_size<F: Real, W: WarmupWalker<F>>(group: &mut [W], eps: f64) -> f64 {
    for_each_walker(group, |w| w.search_step_size(eps));
    let log_mean = group.iter().map(|w| w.searched().ln()).sum::<f64>() / group.len() as f64;
    log_mean.exp()
}

/// What one warmup step adapts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Step size only (dual averaging).
    Fast,
    /// Step size, and the position feeds the variance estimate; `window_end` marks the last
    /// step of a slow window, after which the inverse mass matrix is recomputed.
    Slow { window_end: bool },
    /// The step size is held fixed and the acceptance measured; at `window_end` the step size
    /// is corrected toward the target ([`calibrated_step_size`]).
    Calibrate { window_end: bool },
}

const INITIAL_BUFFER: usize = 75;
const FIRST_WINDOW: usize = 25;
const FINAL_BUFFER: usize = 50;
/// Below this many warmup steps there is too little to estimate variances from.
const MIN_WINDOWED_WARMUP: usize = 20;
/// Below this many warmup steps there are no calibration windows: their acceptance would be
/// too noisy to correct anything.
const MIN_CALIBRATED_WARMUP: usize = 200;
/// Fractions of warmup in the two calibration windows.
const CALIBRATION: [f64; 2] = [0.1, 0.3];

/// The stage of warmup step `i` for `i in 0..warmup`. `adapt_mass_matrix = false` makes the
/// windowed part fast; `calibrate` (the step size is adapted) ends warmup with the
/// calibration windows.
pub fn schedule(warmup: usize, adapt_mass_matrix: bool, calibrate: bool) -> Vec<Stage> {
    let mut out = Vec::with_capacity(warmup);
    let calibration: Vec<usize> = if calibrate && warmup >= MIN_CALIBRATED_WARMUP {
        CALIBRATION
            .iter()
            .map(|f| (f * warmup as f64) as usize)
            .collect()
    } else {
        vec![]
    };
    let windowed = warmup - calibration.iter().sum::<usize>();
    stan_windows(windowed, adapt_mass_matrix, &mut out);
    for len in calibration {
        for k in 0..len {
            out.push(Stage::Calibrate {
                window_end: k + 1 == len,
            });
        }
    }
    out
}

/// Stan's layout of `warmup` steps, appended to `out`.
fn stan_windows(warmup: usize, adapt_mass_matrix: bool, out: &mut Vec<Stage>) {
    let begin = out.len();
    let end = begin + warmup;
    if !adapt_mass_matrix || warmup < MIN_WINDOWED_WARMUP {
        out.resize(end, Stage::Fast);
        return;
    }
    let (mut initial, mut first, mut last) = (INITIAL_BUFFER, FIRST_WINDOW, FINAL_BUFFER);
    if initial + first + last > warmup {
        // Stan's proportions for short warmups.
        initial = warmup * 15 / 100;
        last = warmup / 10;
        first = warmup - initial - last;
    }
    out.resize(begin + initial, Stage::Fast);
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
    out.resize(end, Stage::Fast);
}

/// Exponent of the acceptance model behind [`calibrated_step_size`].
const CALIBRATION_EXPONENT: f64 = 3.0;

/// The step size that should give `target` acceptance, from the mean acceptance `measured` at
/// step size `eps`, assuming 1 − a(ε) ∝ ε^3 locally. Leapfrog's rejection rate grows like
/// ε^k with k = 2 on Gaussian posteriors and k = 2–4 on the deep linear validation cases; a
/// correction with model exponent m shrinks the log error by the factor |1 − k/m|, which for
/// m = 3 is below 1 for every k in (0, 6) (m = 2 would not converge at k = 4). The change is
/// limited to a factor of 2 either way, so one odd window cannot wreck the step size.
pub fn calibrated_step_size(eps: f64, measured: f64, target: f64) -> f64 {
    let factor = ((1.0 - target) / (1.0 - measured)).powf(1.0 / CALIBRATION_EXPONENT);
    // A NaN factor (measured NaN) keeps the step; ∞ (all accepted) doubles it.
    if factor.is_nan() {
        return eps;
    }
    eps * factor.clamp(0.5, 2.0)
}

/// The running mean acceptance of a calibration window.
#[derive(Debug, Clone, Default)]
pub struct AcceptanceWindow {
    sum: f64,
    n: usize,
}

impl AcceptanceWindow {
    pub fn add(&mut self, acceptance: f64) {
        self.sum += if acceptance.is_finite() {
            acceptance
        } else {
            0.0
        };
        self.n += 1;
    }

    /// The mean so far (NaN when empty); restarts the window.
    pub fn take_mean(&mut self) -> f64 {
        let mean = self.sum / self.n as f64;
        *self = AcceptanceWindow::default();
        mean
    }
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
    gamma: f64,
}

/// Stan's t0 (iteration offset) and κ (relaxation exponent). The regularization γ is the
/// sampler's: HMC's 0.15, NUTS's 0.05 (their module docs say why).
const DA_T0: f64 = 10.0;
const DA_KAPPA: f64 = 0.75;

impl DualAveraging {
    /// Starts (or restarts) the averaging at `step_size`, shrinking toward log(10·step_size),
    /// with the regularization `gamma`: static HMC's single Metropolis probability is noisy and
    /// takes 0.15, NUTS's mean over a trajectory Stan's 0.05.
    pub fn with_gamma(step_size: f64, target: f64, gamma: f64) -> Self {
        DualAveraging {
            gamma,
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
        self.log_step = self.mu - self.t.sqrt() / self.gamma * self.error_avg;
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

    /// A walker that only records the shared draws it was given; its own draws count up.
    struct Recorder {
        draws: u32,
        shared: Vec<Option<f64>>,
        x: Vec<f64>,
        inv_mass: Vec<f64>,
    }

    impl Recorder {
        fn new() -> Self {
            Recorder {
                draws: 0,
                shared: vec![],
                x: vec![0.0; 2],
                inv_mass: vec![1.0; 2],
            }
        }
    }

    impl WarmupWalker<f64> for Recorder {
        fn warmup_transition(&mut self, _eps: f64, shared: Option<f64>) {
            self.shared.push(shared);
        }
        fn lockstep_draw(&mut self) -> Option<f64> {
            self.draws += 1;
            Some(f64::from(self.draws) / 1000.0)
        }
        fn last_accept(&self) -> f64 {
            0.8
        }
        fn search_step_size(&mut self, _eps: f64) {}
        fn searched(&self) -> f64 {
            0.1
        }
        fn position(&self) -> &[f64] {
            &self.x
        }
        fn inv_mass(&self) -> &[f64] {
            &self.inv_mass
        }
        fn inv_mass_mut(&mut self) -> &mut [f64] {
            &mut self.inv_mass
        }
        fn finish_warmup(&mut self, _eps: f64) {}
    }

    #[test]
    fn a_pooled_groups_chains_share_each_steps_draw_and_a_lone_chain_draws_its_own() {
        let settings = WarmupSettings {
            warmup: 30,
            step_size: 0.1,
            target_acceptance: 0.8,
            adapt_step_size: false,
            adapt_mass_matrix: false,
            dual_averaging_gamma: 0.05,
        };
        let mut group: Vec<Recorder> = (0..3).map(|_| Recorder::new()).collect();
        windowed_warmup(&settings, &[0.0, 0.0], &mut group);
        let want: Vec<Option<f64>> = (1..=30).map(|k| Some(f64::from(k) / 1000.0)).collect();
        for (c, w) in group.iter().enumerate() {
            assert_eq!(w.shared, want, "chain {c}");
        }
        // The first chain draws for the group, the others never.
        assert_eq!(
            group.iter().map(|w| w.draws).collect::<Vec<_>>(),
            [30, 0, 0]
        );
        let mut alone = [Recorder::new()];
        windowed_warmup(&settings, &[0.0, 0.0], &mut alone);
        assert_eq!(alone[0].shared, vec![None; 30]);
        assert_eq!(alone[0].draws, 0);
    }

    #[test]
    fn the_step_size_advice_fits_what_was_adapted() {
        let adapted = step_size_fix(true, 500, 0.01, 0.8, ", or use name: nuts");
        assert!(
            adapted.contains("raise target_acceptance (e.g. 0.95)"),
            "{adapted}"
        );
        // Already at 0.95: the advice must not repeat the value the run used.
        let at_095 = step_size_fix(true, 500, 0.01, 0.95, ", or use name: nuts");
        assert!(at_095.contains("(e.g. 0.99)"), "{at_095}");
        // Nothing adapts without a warmup: raising the target would change nothing.
        let no_warmup = step_size_fix(true, 0, 0.01, 0.8, ", or use name: nuts");
        assert!(no_warmup.contains("give a warmup"), "{no_warmup}");
        assert!(!no_warmup.contains("target_acceptance"), "{no_warmup}");
        // A warmup too short to settle: say so first (a 20-step warmup adapted 0.68 on a
        // network where a few hundred steps adapt a step that works).
        let short = step_size_fix(true, 20, 0.01, 0.8, "");
        assert!(short.contains("warmup is only 20 transitions"), "{short}");
        assert!(
            short.contains(&format!("at least {MIN_CALIBRATED_WARMUP}")),
            "{short}"
        );
        let fixed = step_size_fix(false, 0, 0.01, 0.8, "");
        assert!(fixed.contains("adapt_step_size: false"), "{fixed}");
    }

    /// Lengths of the windows of one kind; `window_end` is Some(is the last step) for the
    /// stages of that kind, None for the others.
    fn lengths(s: &[Stage], window_end: impl Fn(&Stage) -> Option<bool>) -> Vec<usize> {
        let mut out = vec![];
        let mut run = 0;
        for end in s.iter().filter_map(window_end) {
            run += 1;
            if end {
                out.push(run);
                run = 0;
            }
        }
        out
    }

    fn window_lengths(s: &[Stage]) -> Vec<usize> {
        lengths(s, |st| match st {
            Stage::Slow { window_end } => Some(*window_end),
            _ => None,
        })
    }

    fn calibration_lengths(s: &[Stage]) -> Vec<usize> {
        lengths(s, |st| match st {
            Stage::Calibrate { window_end } => Some(*window_end),
            _ => None,
        })
    }

    #[test]
    fn stan_schedule_for_1000_steps() {
        // Stan's documented layout for 1000 warmup iterations: 75 fast, slow windows of 25, 50,
        // 100, 200 and 500 (the last absorbs the remainder), 50 fast.
        let s = schedule(1000, true, false);
        assert_eq!(s.len(), 1000);
        assert!(s[..75].iter().all(|x| *x == Stage::Fast));
        assert!(s[950..].iter().all(|x| *x == Stage::Fast));
        assert_eq!(window_lengths(&s), vec![25, 50, 100, 200, 500]);
    }

    #[test]
    fn short_warmups_shrink_or_drop_the_windows() {
        // 100 < 75 + 25 + 50: 15 fast, one slow window of 75, 10 fast.
        let s = schedule(100, true, false);
        assert_eq!(window_lengths(&s), vec![75]);
        assert!(s[..15].iter().all(|x| *x == Stage::Fast));
        assert!(s[90..].iter().all(|x| *x == Stage::Fast));
        assert!(schedule(19, true, false).iter().all(|x| *x == Stage::Fast));
        assert!(
            schedule(500, false, false)
                .iter()
                .all(|x| *x == Stage::Fast)
        );
        assert!(schedule(0, true, true).is_empty());
    }

    #[test]
    fn calibration_windows_close_the_warmup() {
        // 1000 steps: Stan's layout over the first 600 (75 fast; slow 25, 50, 100, 300; 50
        // fast), then fixed-step windows of 100 and 300.
        let s = schedule(1000, true, true);
        assert_eq!(s.len(), 1000);
        assert_eq!(window_lengths(&s), vec![25, 50, 100, 300]);
        assert!(s[550..600].iter().all(|x| *x == Stage::Fast));
        assert_eq!(calibration_lengths(&s), vec![100, 300]);
        assert!(
            s[600..]
                .iter()
                .all(|x| matches!(x, Stage::Calibrate { .. }))
        );
        // Without metric adaptation the first 60 % is dual averaging only.
        let s = schedule(500, false, true);
        assert!(s[..300].iter().all(|x| *x == Stage::Fast));
        assert_eq!(calibration_lengths(&s), vec![50, 150]);
        // Too short to measure an acceptance rate: no calibration.
        assert!(calibration_lengths(&schedule(199, true, true)).is_empty());
        assert_eq!(
            calibration_lengths(&schedule(200, true, true)),
            vec![20, 60]
        );
    }

    #[test]
    fn calibration_moves_the_step_toward_the_target() {
        // On the model it assumes, 1 − a = c·ε³, one correction lands exactly: a(ε) = 0.9 at
        // ε = 1 means c = 0.1, and a = 0.8 needs ε = 2^(1/3).
        let eps = calibrated_step_size(1.0, 0.9, 0.8);
        assert!((eps - 2f64.powf(1.0 / 3.0)).abs() < 1e-12, "{eps}");
        // On a k = 2 curve (Gaussian leapfrog) it undershoots by the factor 1 − k/3 in log
        // space, and repeated corrections converge: from a(1) = 0.95, six windows bring the
        // acceptance within 0.001 of the target.
        let accept = |e: f64| 1.0 - 0.05 * e * e;
        let mut e = 1.0;
        for _ in 0..6 {
            e = calibrated_step_size(e, accept(e), 0.8);
        }
        assert!((accept(e) - 0.8).abs() < 1e-3, "{}", accept(e));
        // All accepted says nothing about how far to go: the step doubles (the limit). All
        // rejected shrinks it by (0.2/1)^(1/3); a high target can hit the lower limit, ½.
        assert_eq!(calibrated_step_size(0.1, 1.0, 0.8), 0.2);
        let shrunk = calibrated_step_size(0.1, 0.0, 0.8);
        assert!((shrunk - 0.1 * 0.2f64.cbrt()).abs() < 1e-15, "{shrunk}");
        assert_eq!(calibrated_step_size(0.1, 0.0, 0.95), 0.05);
        assert_eq!(calibrated_step_size(0.1, f64::NAN, 0.8), 0.1);
    }

    #[test]
    fn acceptance_window_means_and_restarts() {
        let mut w = AcceptanceWindow::default();
        for a in [1.0, 0.5, f64::NAN, 0.5] {
            w.add(a);
        }
        // NaN counts as a rejection (0): (1 + 0.5 + 0 + 0.5) / 4.
        assert_eq!(w.take_mean(), 0.5);
        w.add(0.25);
        assert_eq!(w.take_mean(), 0.25);
    }

    #[test]
    fn dual_averaging_moves_toward_the_target() {
        // Acceptance 1 means the step is too small: the step size must grow; 0 means shrink.
        let mut up = DualAveraging::with_gamma(0.1, 0.8, 0.15);
        let mut down = DualAveraging::with_gamma(0.1, 0.8, 0.15);
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
        let mut da = DualAveraging::with_gamma(1.0, 0.8, 0.15);
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
