//! The No-U-Turn Sampler (NUTS) with a diagonal inverse mass matrix and HMC's windowed warmup.
//!
//! Input: a [`NutsConfig`], the posterior, and one RNG per chain. Output: one [`ChainTrace`]
//! per chain. Every chain starts at w*. Warmup is HMC's ([`super::hmc`] explains every choice):
//! `adaptation: pooled` (lockstep chains sharing one step size and metric) or `per_chain`, a
//! step-size search before dual averaging and after every metric update, Stan's windows over
//! the first 60 % of warmup and two fixed-step calibration windows over the last 40 %
//! ([`super::window_adaptation`]). Dual averaging uses Stan's γ = 0.05 here: NUTS's acceptance
//! statistic is a mean over a whole trajectory, the quantity Stan's constants were chosen for.
//!
//! A transition (Hoffman & Gelman 2014, "The No-U-Turn Sampler", with the multinomial
//! sampling and generalized criterion of Betancourt 2017, "A Conceptual Introduction to
//! Hamiltonian Monte Carlo", Appendix A; the layout of Stan's `base_nuts`):
//! * A fresh momentum p ~ N(0, M); the trajectory is the single point (w, p).
//! * Repeatedly, a direction is drawn (forward or backward in time, ½ each) and a subtree of
//!   2^depth leapfrog steps is built from that end, so the trajectory doubles. Within a
//!   subtree, proposals are sampled multinomially: a node keeps its right half's proposal
//!   with probability w_right / (w_left + w_right), where a point's weight is exp(H0 − H).
//!   At the top the sampling is biased progressive: the new subtree's proposal replaces the
//!   current sample with probability min(1, w_subtree / w_old), which favours moving far.
//! * The generalized U-turn criterion stops the doubling: a (sub)trajectory with momentum sum
//!   ρ and end momenta p⁻, p⁺ has turned when p♯⁻·ρ ≤ 0 or p♯⁺·ρ ≤ 0, with p♯ = M⁻¹p. Every
//!   subtree is checked, and, as in Stan since 2.21, every merge of two halves is also checked
//!   across the seam: (left half + first point of the right half) and (last point of the left
//!   half + right half), which catches turns a sum over two long halves can hide. A subtree
//!   that turns inside is discarded and ends the transition. At the top merge the "left half"
//!   is the old trajectory, whose seam point is the end that was extended (Stan uses the
//!   first point of the previous subtree in that direction; the two agree after one step).
//! * A leapfrog step whose energy error H − H0 exceeds `max_energy_error`, or is not finite,
//!   is divergent: its subtree is discarded and the transition ends.
//! * At most `max_tree_depth` doublings: at most 2^max_tree_depth − 1 gradients per draw.
//!
//! Recorded per draw: loss, LLC, `acceptance` (Stan's statistic: the mean over every leapfrog
//! point of the transition, those of a discarded last subtree included, of min(1, exp(H0 − H)),
//! which dual averaging also adapts on), `energy` (H of the selected point, with the momentum
//! it had on its trajectory), `energy_error` (the largest |H − H0| over the transition's
//! leapfrog points, +∞ when one was not finite: the number divergence is judged on, where
//! HMC's records the proposal's signed error), `step_size`, `diverging` (0/1), `tree_depth`
//! (doublings tried, as Stan counts them: a rejected last doubling counts, so a draw
//! costs at most 2^tree_depth − 1 gradients) and `n_leapfrog` (gradients of the transition). As HMC:
//! `warmup_step_size`, `warmup_acceptance` and `warmup_diverging` for the adaptation plot.
//!
//! Every buffer a transition needs is allocated with the chain: the two trajectory ends, one
//! proposal per tree level, and per level the momenta and momentum sums the U-turn checks use.
//! The tree is built recursively (at most `max_tree_depth` ≤ 15 frames deep).

use rand::Rng;
use rayon::prelude::*;

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::settings::{d_chains, d_max_energy_error, d_target_acceptance, default_true};
use super::stat;
use super::vecops::{fill_normal, weighted_norm_sq};
use super::window_adaptation::{
    Adaptation, MetropolisSettings, WarmupSettings, WarmupWalker, step_size_fix, windowed_warmup,
};
use super::{ChainTrace, Footprint, NonFinite, OPEN_TRAJECTORY_STEPS, Sampler, SamplerError};
use crate::invalid::{Invalid, count_or_zero, invalid};
use crate::numeric::Real;
use crate::posterior::{LossModel, Posterior};

/// NUTS's settings: a `name: nuts` entry of an experiments file, over `config/sampler/nuts.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NutsConfig {
    #[serde(default = "d_chains")]
    pub chains: usize,
    /// Adaptation steps (discarded).
    pub warmup: usize,
    pub draws: usize,
    /// Initial step size; adapted during warmup when `adapt_step_size`.
    pub step_size: f64,
    #[serde(default = "d_target_acceptance")]
    pub target_acceptance: f64,
    /// A trajectory doubles at most this many times: at most 2^depth − 1 leapfrog steps.
    #[serde(default = "d_max_tree_depth")]
    pub max_tree_depth: usize,
    #[serde(default = "default_true")]
    pub adapt_step_size: bool,
    #[serde(default = "default_true")]
    pub adapt_mass_matrix: bool,
    /// An energy error above this marks the transition divergent and stops its tree.
    #[serde(default = "d_max_energy_error")]
    pub max_energy_error: f64,
    /// As HMC's: pooled (lockstep) or per-chain warmup; left out of the serialized config at
    /// its default.
    #[serde(default, skip_serializing_if = "Adaptation::is_default")]
    pub adaptation: Adaptation,
    /// Part of the run ID, and so of every chain's RNG seed: change it for another replicate.
    #[serde(default)]
    pub seed: u64,
}

/// Stan's and BlackJAX's default.
fn d_max_tree_depth() -> usize {
    10
}

/// The largest `max_tree_depth` accepted: 2^15 − 1 gradients per draw is already far past any
/// budget this tool is meant for, and the tree keeps per-level buffers.
pub const MAX_TREE_DEPTH_LIMIT: usize = 15;

impl Sampler for NutsConfig {
    const PRESET: &'static str = include_str!("../../config/sampler/nuts.yaml");
    /// 500 of the preset's 2,000 draws. Its draws are nearly independent (bulk ESS about 0.35
    /// per draw on the deep linear networks), and on them a draw costs up to 1,000 gradients,
    /// so the quick budget is mostly warmup. Measured with seeds 0 and 1 (f64) on regular,
    /// dln432, dln333 and all five trained cases: 16 of 16 pass, errors −3.0 % to +2.2 %, bulk
    /// ESS 635–986, R-hat ≤ 1.0081.
    const QUICK_OVERRIDES: &'static str = "{ draws: 500 }";
    const METROPOLIS: bool = true;
    const STATS: &'static [&'static str] = &[
        stat::ACCEPTANCE,
        stat::ENERGY,
        stat::ENERGY_ERROR,
        stat::STEP_SIZE,
        stat::DIVERGING,
        stat::TREE_DEPTH,
        stat::N_LEAPFROG,
        stat::WARMUP_STEP_SIZE,
        stat::WARMUP_ACCEPTANCE,
        stat::WARMUP_DIVERGING,
    ];

    fn chains(&self) -> usize {
        self.chains
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn target_acceptance(&self) -> Option<f64> {
        Some(self.target_acceptance)
    }

    fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        MetropolisSettings {
            draws: self.draws,
            step_size: self.step_size,
            target_acceptance: self.target_acceptance,
            max_energy_error: self.max_energy_error,
        }
        .validate(prefix, out);
        count_or_zero(out, &format!("{prefix}.warmup"), self.warmup);
        if !(1..=MAX_TREE_DEPTH_LIMIT).contains(&self.max_tree_depth) {
            out.push(invalid(
                &format!("{prefix}.max_tree_depth"),
                format!(
                    "must be in 1..={MAX_TREE_DEPTH_LIMIT}, got {}",
                    self.max_tree_depth
                ),
            ));
        }
    }

    fn run_chains<F: Real, M: LossModel<F>>(
        &self,
        post: &Posterior<'_, F, M>,
        rngs: Vec<Xoshiro256PlusPlus>,
        _run_id: &str,
    ) -> Result<Vec<ChainTrace>, SamplerError> {
        Ok(run_chains(self, post, rngs))
    }

    fn fix(&self) -> String {
        step_size_fix(
            self.adapt_step_size,
            self.warmup,
            self.step_size,
            self.target_acceptance,
            "",
        )
    }

    fn gradients_per_chain(&self, _n_data: f64) -> f64 {
        // A tree of depth d costs up to 2^d − 1 gradients; adapted trees rarely go deep.
        let tree = 2f64.powi(self.max_tree_depth.min(5) as i32);
        (self.warmup + self.draws) as f64 * tree.min(OPEN_TRAJECTORY_STEPS)
    }

    fn footprint(&self, params: f64, _n_data: f64) -> Footprint {
        Footprint {
            draws: self.draws as f64,
            warmup_steps: self.warmup as f64,
            // The checkpoints of a tree: a few vectors per doubling.
            extra_bytes: 4.0 * self.max_tree_depth as f64 * params * 8.0,
        }
    }
}

/// Acceptance probability the step-size search aims at (Stan's `init_stepsize`).
const SEARCH_ACCEPTANCE: f64 = 0.8;
/// Doublings/halvings the search may make: 2^±60 covers any sane starting value.
const SEARCH_MAX_ITERS: usize = 60;
/// Stan's dual-averaging regularization, chosen for NUTS's trajectory-mean statistic.
const NUTS_DA_GAMMA: f64 = 0.05;

/// One transition's statistics.
#[derive(Debug, Clone, Copy)]
struct Transition {
    accept_stat: f64,
    energy: f64,
    max_abs_energy_error: f64,
    divergent: bool,
    depth: usize,
    n_leapfrog: usize,
}

/// A phase-space point without its momentum: what the sample and the proposals keep.
struct Point<F> {
    x: Vec<F>,
    grad: Vec<F>,
    logp: f64,
    loss: F,
    /// H at the point, with the momentum it had on its trajectory.
    h: f64,
}

impl<F: Real> Point<F> {
    fn new(d: usize) -> Self {
        Point {
            x: vec![F::zero(); d],
            grad: vec![F::zero(); d],
            logp: f64::NEG_INFINITY,
            loss: F::zero(),
            h: f64::INFINITY,
        }
    }
}

/// One end of the trajectory: the state a leapfrog step continues from.
struct End<F> {
    x: Vec<F>,
    p: Vec<F>,
    grad: Vec<F>,
}

/// Direction indices into [`Chain::ends`].
const BACKWARD: usize = 0;
const FORWARD: usize = 1;

/// The running totals of one transition's tree.
struct Build {
    h0: f64,
    eps: f64,
    max_energy_error: f64,
    n_leapfrog: usize,
    sum_metro_prob: f64,
    max_abs_energy_error: f64,
    divergent: bool,
    non_finite: bool,
}

/// p♯ₐ·(ρ + extra) > 0 and p♯_b·(ρ + extra) > 0, with p♯ = M⁻¹p (M⁻¹ = diag(`inv_mass`)):
/// true while the trajectory with momentum sum ρ + extra and end momenta `pa`, `pb` has not
/// turned back on itself (Betancourt 2017, Appendix A.4.2). `extra` adds one point's momentum
/// for the checks across a merge without forming the sum.
pub(super) fn no_u_turn<F: Real>(
    inv_mass: &[F],
    pa: &[F],
    pb: &[F],
    rho: &[F],
    extra: Option<&[F]>,
) -> bool {
    let (mut da, mut db) = (0.0_f64, 0.0_f64);
    for i in 0..rho.len() {
        let r = rho[i].f64() + extra.map_or(0.0, |e| e[i].f64());
        let w = inv_mass[i].f64();
        da += w * pa[i].f64() * r;
        db += w * pb[i].f64() * r;
    }
    da > 0.0 && db > 0.0
}

/// log(eᵃ + eᵇ), exact for −∞ arguments.
fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Copies level `from` of `levels` into level `to` (different levels).
fn copy_level<F: Copy>(levels: &mut [Vec<F>], from: usize, to: usize) {
    let (src, dst) = if from < to {
        let (lo, hi) = levels.split_at_mut(to);
        (&lo[from], &mut hi[0])
    } else {
        let (lo, hi) = levels.split_at_mut(from);
        (&hi[0], &mut lo[to])
    };
    dst.copy_from_slice(src);
}

/// A chain's state and its preallocated tree buffers.
pub(super) struct Chain<'p, 'm, F: Real, M: LossModel<F>> {
    post: &'p Posterior<'m, F, M>,
    ws: M::Workspace,
    /// The current state: the last transition's sample.
    cur: Point<F>,
    inv_mass: Vec<F>,
    /// The trajectory's backward and forward ends.
    ends: [End<F>; 2],
    /// `props[0]`: the proposal of the subtree the top level is building; `props[d]`
    /// (d ≥ 1): the proposal of the right half of the depth-d node being built.
    props: Vec<Point<F>>,
    /// Per depth d: the first momentum and the momentum sum of the depth-d subtree last built.
    beg: Vec<Vec<F>>,
    rho: Vec<Vec<F>>,
    /// Per depth d ≥ 1: the momentum sum and the last momentum of the node's left half.
    rho_left: Vec<Vec<F>>,
    left_end: Vec<Vec<F>>,
    /// The whole trajectory's momentum sum, and the momentum of the end being extended as it
    /// was before the extension (the old trajectory's seam point).
    rho_traj: Vec<F>,
    seam: Vec<F>,
    max_depth: usize,
    grad_evals: u64,
    non_finite: NonFinite,
}

impl<'p, 'm, F: Real, M: LossModel<F>> Chain<'p, 'm, F, M> {
    pub(super) fn new(post: &'p Posterior<'m, F, M>, max_depth: usize) -> Self {
        let d = post.dim();
        let mut ws = post.model.workspace(post.model.n_data());
        let mut cur = Point::new(d);
        cur.x.copy_from_slice(&post.w_star);
        let eval = post.logp_grad(&cur.x, &mut cur.grad, &mut ws);
        cur.logp = eval.logp.f64();
        cur.loss = eval.loss;
        let end = || End {
            x: vec![F::zero(); d],
            p: vec![F::zero(); d],
            grad: vec![F::zero(); d],
        };
        let levels = |n: usize| (0..n).map(|_| vec![F::zero(); d]).collect::<Vec<_>>();
        // Depths 0..max_depth−1 are built (depth k has 2^k leapfrog steps).
        let levels_n = max_depth.max(1);
        Chain {
            post,
            ws,
            cur,
            inv_mass: vec![F::one(); d],
            ends: [end(), end()],
            props: (0..levels_n).map(|_| Point::new(d)).collect(),
            beg: levels(levels_n),
            rho: levels(levels_n),
            rho_left: levels(levels_n),
            left_end: levels(levels_n),
            rho_traj: vec![F::zero(); d],
            seam: vec![F::zero(); d],
            max_depth,
            grad_evals: 1,
            non_finite: NonFinite::default(),
        }
    }

    /// Starts a trajectory at the current state with momentum p ~ N(0, M), M = diag(1/inv_mass),
    /// in both ends; returns H0.
    fn start_trajectory<R: Rng>(&mut self, rng: &mut R) -> f64 {
        let [bck, fwd] = &mut self.ends;
        fill_normal(rng, &mut fwd.p);
        for (p, &w) in fwd.p.iter_mut().zip(&self.inv_mass) {
            *p /= w.sqrt();
        }
        for e in [&mut *bck, &mut *fwd] {
            e.x.copy_from_slice(&self.cur.x);
            e.grad.copy_from_slice(&self.cur.grad);
        }
        bck.p.copy_from_slice(&fwd.p);
        -self.cur.logp + 0.5 * weighted_norm_sq(&fwd.p, &self.inv_mass)
    }

    /// One leapfrog step of (signed) size `eps` from end `dir`, in place; returns log p and
    /// the loss at the new position (log p = −∞ when it is not finite: the second half kick
    /// is then skipped, the trajectory is abandoned anyway).
    fn leapfrog(&mut self, dir: usize, eps: F) -> (f64, F) {
        let e = &mut self.ends[dir];
        let half = eps * F::of(0.5);
        for (p, &g) in e.p.iter_mut().zip(&e.grad) {
            *p += half * g;
        }
        for ((x, &p), &w) in e.x.iter_mut().zip(&e.p).zip(&self.inv_mass) {
            *x += eps * w * p;
        }
        let eval = self.post.logp_grad(&e.x, &mut e.grad, &mut self.ws);
        self.grad_evals += 1;
        let logp = eval.logp.f64();
        if !logp.is_finite() {
            return (f64::NEG_INFINITY, eval.loss);
        }
        for (p, &g) in e.p.iter_mut().zip(&e.grad) {
            *p += half * g;
        }
        (logp, eval.loss)
    }

    /// Builds a subtree of 2^depth leapfrog steps from end `dir`, its proposal into
    /// `props[out]`, its first momentum and momentum sum into `beg[depth]` and `rho[depth]`.
    /// Returns the log of the subtree's total weight, or None when it diverged or turned
    /// inside (the caller discards it).
    fn build<R: Rng>(
        &mut self,
        depth: usize,
        dir: usize,
        out: usize,
        b: &mut Build,
        rng: &mut R,
    ) -> Option<f64> {
        if depth == 0 {
            return self.leaf(dir, out, b);
        }
        let lsw_left = self.build(depth - 1, dir, out, b, rng)?;
        copy_level(&mut self.beg, depth - 1, depth);
        copy_level(&mut self.rho, depth - 1, depth);
        self.rho_left[depth].copy_from_slice(&self.rho[depth]);
        self.left_end[depth].copy_from_slice(&self.ends[dir].p);
        // The right half's proposal goes to this depth's own buffer.
        let lsw_right = self.build(depth - 1, dir, depth, b, rng)?;
        let lsw = log_add_exp(lsw_left, lsw_right);
        // Multinomial sampling between the halves. The uniform is drawn whatever the weights so
        // the RNG stream depends only on the tree's shape.
        let u: f64 = rng.random();
        if u < (lsw_right - lsw).exp() {
            self.props.swap(out, depth);
        }
        // ρ = ρ_left + ρ_right; rho[depth] held ρ_left (copied above), rho[depth−1] holds ρ_right.
        {
            let (lo, hi) = self.rho.split_at_mut(depth);
            for (r, &x) in hi[0].iter_mut().zip(&lo[depth - 1]) {
                *r += x;
            }
        }
        let w = &self.inv_mass;
        let p_end = &self.ends[dir].p;
        let (beg, right_beg) = (&self.beg[depth], &self.beg[depth - 1]);
        let (rho_right, left_end) = (&self.rho[depth - 1], &self.left_end[depth]);
        let persist = no_u_turn(w, beg, p_end, &self.rho[depth], None)
            && no_u_turn(w, beg, right_beg, &self.rho_left[depth], Some(right_beg))
            && no_u_turn(w, left_end, p_end, rho_right, Some(left_end));
        persist.then_some(lsw)
    }

    /// A subtree of one leapfrog step.
    fn leaf(&mut self, dir: usize, out: usize, b: &mut Build) -> Option<f64> {
        let eps = if dir == FORWARD { b.eps } else { -b.eps };
        let (logp, loss) = self.leapfrog(dir, F::of(eps));
        b.n_leapfrog += 1;
        let e = &self.ends[dir];
        let mut h = -logp + 0.5 * weighted_norm_sq(&e.p, &self.inv_mass);
        if !h.is_finite() {
            // NaN and −∞ included: a point whose energy is not a number has no weight.
            h = f64::INFINITY;
            b.non_finite = true;
        }
        let err = h - b.h0;
        b.max_abs_energy_error = b.max_abs_energy_error.max(err.abs());
        b.sum_metro_prob += if err <= 0.0 { 1.0 } else { (-err).exp() };
        // h is never NaN here (mapped to +∞ above); the NaN test guards a non-finite H0.
        if err > b.max_energy_error || err.is_nan() {
            b.divergent = true;
            return None;
        }
        let prop = &mut self.props[out];
        prop.x.copy_from_slice(&e.x);
        prop.grad.copy_from_slice(&e.grad);
        prop.logp = logp;
        prop.loss = loss;
        prop.h = h;
        self.beg[0].copy_from_slice(&e.p);
        self.rho[0].copy_from_slice(&e.p);
        Some(b.h0 - h)
    }

    /// One NUTS transition with step size `eps` (see the module doc).
    fn transition<R: Rng>(&mut self, eps: f64, max_energy_error: f64, rng: &mut R) -> Transition {
        let h0 = self.start_trajectory(rng);
        self.cur.h = h0;
        self.rho_traj.copy_from_slice(&self.ends[FORWARD].p);
        let mut b = Build {
            h0,
            eps,
            max_energy_error,
            n_leapfrog: 0,
            sum_metro_prob: 0.0,
            max_abs_energy_error: 0.0,
            divergent: false,
            non_finite: false,
        };
        // The initial point's weight is exp(H0 − H0) = 1.
        let mut log_weight = 0.0;
        let mut depth = 0;
        while depth < self.max_depth {
            let dir = if rng.random::<bool>() {
                FORWARD
            } else {
                BACKWARD
            };
            self.seam.copy_from_slice(&self.ends[dir].p);
            let Some(lsw_sub) = self.build(depth, dir, 0, &mut b, rng) else {
                // Stan's convention, which ArviZ's `tree_depth` follows: a doubling counts
                // when it is tried, even if its subtree turned or diverged and was rejected, so
                // that a draw's gradients are at most 2^depth − 1.
                depth += 1;
                break;
            };
            // Biased progressive sampling: move to the new subtree with probability
            // min(1, w_new / w_old).
            let u: f64 = rng.random();
            if u < (lsw_sub - log_weight).exp() {
                std::mem::swap(&mut self.cur, &mut self.props[0]);
            }
            log_weight = log_add_exp(log_weight, lsw_sub);
            // The merged trajectory, and across the seam between old and new.
            let w = &self.inv_mass;
            let (far_old, far_new) = (&self.ends[1 - dir].p, &self.ends[dir].p);
            let (rho_new, beg_new) = (&self.rho[depth], &self.beg[depth]);
            let persist = no_u_turn(w, far_old, far_new, &self.rho_traj, Some(rho_new))
                && no_u_turn(w, far_old, beg_new, &self.rho_traj, Some(beg_new))
                && no_u_turn(w, &self.seam, far_new, rho_new, Some(&self.seam));
            for (r, &x) in self.rho_traj.iter_mut().zip(rho_new) {
                *r += x;
            }
            depth += 1;
            if !persist {
                break;
            }
        }
        self.non_finite.observe(b.non_finite);
        Transition {
            accept_stat: b.sum_metro_prob / b.n_leapfrog.max(1) as f64,
            energy: self.cur.h,
            max_abs_energy_error: b.max_abs_energy_error,
            divergent: b.divergent,
            depth,
            n_leapfrog: b.n_leapfrog,
        }
    }

    /// log of the Metropolis ratio of one leapfrog step of size `eps` with fresh momentum,
    /// from the current state (which is left unchanged); −∞ for a non-finite result.
    fn one_step_log_ratio<R: Rng>(&mut self, eps: f64, rng: &mut R) -> f64 {
        let h0 = self.start_trajectory(rng);
        let (logp1, _) = self.leapfrog(FORWARD, F::of(eps));
        let h1 = -logp1 + 0.5 * weighted_norm_sq(&self.ends[FORWARD].p, &self.inv_mass);
        let r = h0 - h1;
        if r.is_nan() { f64::NEG_INFINITY } else { r }
    }

    /// Stan's `init_stepsize`, as HMC's: doubles (or halves) `eps` until one leapfrog step's
    /// acceptance crosses [`SEARCH_ACCEPTANCE`]; `eps` unchanged when no finite answer is found.
    fn reasonable_step_size<R: Rng>(&mut self, eps: f64, rng: &mut R) -> f64 {
        let threshold = SEARCH_ACCEPTANCE.ln();
        let mut e = eps;
        let up = self.one_step_log_ratio(e, rng) > threshold;
        for _ in 0..SEARCH_MAX_ITERS {
            let next = if up { 2.0 * e } else { 0.5 * e };
            if !(next.is_finite() && next > 0.0) {
                break;
            }
            e = next;
            let r = self.one_step_log_ratio(e, rng);
            if (up && r <= threshold) || (!up && r >= threshold) {
                return e;
            }
        }
        if e.is_finite() && e > 0.0 { e } else { eps }
    }
}

/// A chain with its RNG and its warmup record: what the warmup moves in lockstep.
struct Walker<'p, 'm, F: Real, M: LossModel<F>, R> {
    chain: Chain<'p, 'm, F, M>,
    rng: R,
    /// `max_energy_error` of the config.
    max_err: f64,
    /// The last warmup transition's acceptance statistic (the group averages them).
    last_accept: f64,
    /// The step size the last search found (the group combines them).
    searched: f64,
    /// The adapted step size the draws use.
    eps: f64,
    warm_eps: Vec<f64>,
    warm_acc: Vec<f64>,
    warm_div: Vec<f64>,
}

impl<'p, 'm, F: Real, M: LossModel<F>, R: Rng> Walker<'p, 'm, F, M, R> {
    fn new(post: &'p Posterior<'m, F, M>, rng: R, cfg: &NutsConfig) -> Self {
        Walker {
            chain: Chain::new(post, cfg.max_tree_depth),
            rng,
            max_err: cfg.max_energy_error,
            last_accept: 0.0,
            searched: cfg.step_size,
            eps: cfg.step_size,
            warm_eps: Vec::with_capacity(cfg.warmup),
            warm_acc: Vec::with_capacity(cfg.warmup),
            warm_div: Vec::with_capacity(cfg.warmup),
        }
    }
}

impl<F: Real, M: LossModel<F>, R: Rng + Send> WarmupWalker<F> for Walker<'_, '_, F, M, R> {
    fn warmup_transition(&mut self, eps: f64, _shared: Option<f64>) {
        let t = self.chain.transition(eps, self.max_err, &mut self.rng);
        self.last_accept = t.accept_stat;
        self.warm_eps.push(eps);
        self.warm_acc.push(t.accept_stat);
        self.warm_div.push(if t.divergent { 1.0 } else { 0.0 });
    }

    /// NUTS shares nothing: a tree's size follows from its own trajectory.
    fn lockstep_draw(&mut self) -> Option<f64> {
        None
    }

    fn last_accept(&self) -> f64 {
        self.last_accept
    }

    fn search_step_size(&mut self, eps: f64) {
        self.searched = self.chain.reasonable_step_size(eps, &mut self.rng);
    }

    fn searched(&self) -> f64 {
        self.searched
    }

    fn position(&self) -> &[F] {
        &self.chain.cur.x
    }

    fn inv_mass(&self) -> &[F] {
        &self.chain.inv_mass
    }

    fn inv_mass_mut(&mut self) -> &mut [F] {
        &mut self.chain.inv_mass
    }

    fn finish_warmup(&mut self, eps: f64) {
        self.eps = eps;
        // Warmup divergences are expected while the step size is found: `warmup_diverging`.
        self.chain.non_finite = NonFinite::default();
    }
}

/// Runs every chain of a NUTS run (warmup, then draws); `rngs` holds one RNG per chain.
pub(super) fn run_chains<F: Real, M: LossModel<F>, R: Rng + Send>(
    cfg: &NutsConfig,
    post: &Posterior<'_, F, M>,
    rngs: Vec<R>,
) -> Vec<ChainTrace> {
    let mut walkers: Vec<_> = rngs
        .into_par_iter()
        .map(|rng| Walker::new(post, rng, cfg))
        .collect();
    match cfg.adaptation {
        // As HMC's: inside a scope each lockstep step is an in-pool fork-join.
        Adaptation::Pooled => rayon::scope(|_| warmup(cfg, post, &mut walkers)),
        Adaptation::PerChain => walkers
            .par_iter_mut()
            .for_each(|w| warmup(cfg, post, std::slice::from_mut(w))),
    }
    walkers
        .into_par_iter()
        .enumerate()
        .map(|(i, w)| draws(cfg, post, w, i))
        .collect()
}

/// Runs one NUTS chain with its own adaptation (the group of one that `per_chain` makes).
#[cfg(test)]
pub(super) fn run_chain<F: Real, M: LossModel<F>, R: Rng + Send>(
    cfg: &NutsConfig,
    post: &Posterior<'_, F, M>,
    rng: &mut R,
    chain_index: usize,
) -> ChainTrace {
    let mut w = Walker::new(post, rng, cfg);
    warmup(cfg, post, std::slice::from_mut(&mut w));
    draws(cfg, post, w, chain_index)
}

/// HMC's windowed warmup of a group of chains ([`windowed_warmup`]), with Stan's dual-averaging
/// regularization. Leaves the adapted step size in each walker's `eps`.
fn warmup<F: Real, M: LossModel<F>, R: Rng + Send>(
    cfg: &NutsConfig,
    post: &Posterior<'_, F, M>,
    group: &mut [Walker<'_, '_, F, M, R>],
) {
    let settings = WarmupSettings {
        warmup: cfg.warmup,
        step_size: cfg.step_size,
        target_acceptance: cfg.target_acceptance,
        adapt_step_size: cfg.adapt_step_size,
        adapt_mass_matrix: cfg.adapt_mass_matrix,
        dual_averaging_gamma: NUTS_DA_GAMMA,
    };
    windowed_warmup(&settings, &post.w_star, group);
}

/// Records `cfg.draws` transitions of an adapted chain and assembles its trace.
fn draws<F: Real, M: LossModel<F>, R: Rng>(
    cfg: &NutsConfig,
    post: &Posterior<'_, F, M>,
    walker: Walker<'_, '_, F, M, R>,
    chain_index: usize,
) -> ChainTrace {
    let Walker {
        mut chain,
        mut rng,
        eps,
        warm_eps,
        warm_acc,
        warm_div,
        ..
    } = walker;
    let max_err = cfg.max_energy_error;
    let mut trace = ChainTrace::default();
    let n = cfg.draws;
    let col = || Vec::with_capacity(n);
    let (mut llc, mut loss, mut acc, mut energy) = (col(), col(), col(), col());
    let (mut err, mut div, mut depth, mut n_leap) = (col(), col(), col(), col());
    for _ in 0..n {
        let t = chain.transition(eps, max_err, &mut rng);
        llc.push(post.llc(chain.cur.loss));
        loss.push(chain.cur.loss.f64());
        acc.push(t.accept_stat);
        energy.push(t.energy);
        err.push(t.max_abs_energy_error);
        div.push(if t.divergent { 1.0 } else { 0.0 });
        depth.push(t.depth as f64);
        n_leap.push(t.n_leapfrog as f64);
        if t.divergent {
            trace.divergences += 1;
        }
    }

    trace.acceptance_rate = Some(acc.iter().sum::<f64>() / n.max(1) as f64);
    trace.llc = llc;
    trace.loss = loss;
    trace.grad_evals = chain.grad_evals;
    let stats = &mut trace.stats;
    stats.insert(stat::ACCEPTANCE.into(), acc);
    stats.insert(stat::ENERGY.into(), energy);
    stats.insert(stat::ENERGY_ERROR.into(), err);
    stats.insert(stat::STEP_SIZE.into(), vec![eps; n]);
    stats.insert(stat::DIVERGING.into(), div);
    stats.insert(stat::TREE_DEPTH.into(), depth);
    stats.insert(stat::N_LEAPFROG.into(), n_leap);
    stats.insert(stat::WARMUP_STEP_SIZE.into(), warm_eps);
    stats.insert(stat::WARMUP_ACCEPTANCE.into(), warm_acc);
    stats.insert(stat::WARMUP_DIVERGING.into(), warm_div);
    let inv_mass = chain.inv_mass.iter().map(|w| w.f64());
    let (lo, hi) = inv_mass.fold((f64::INFINITY, 0.0_f64), |(lo, hi), w| {
        (lo.min(w), hi.max(w))
    });
    trace.tuned.insert("step_size".into(), eps);
    trace.tuned.insert("inv_mass_min".into(), lo);
    trace.tuned.insert("inv_mass_max".into(), hi);
    let consequence = "each ended its tree as divergent; the chain kept a state from before";
    if let Some(w) = chain
        .non_finite
        .warning(chain_index, "transitions", consequence)
    {
        trace.warnings.push(w);
    }
    trace
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samplers::chain_rng;
    use crate::samplers::test_models::{LinReg, LinRegProblem};

    #[test]
    fn u_turn_criterion_on_hand_made_vectors() {
        let unit = [1.0_f64, 1.0];
        // Both ends moving along ρ: no turn.
        assert!(no_u_turn(
            &unit,
            &[1.0, 0.0],
            &[1.0, 0.2],
            &[3.0, 0.5],
            None
        ));
        // The forward end has reversed (p⁺·ρ = −0.5 + 0.01 < 0): a turn.
        assert!(!no_u_turn(
            &unit,
            &[1.0, 0.0],
            &[-1.0, 0.1],
            &[0.5, 0.1],
            None
        ));
        // The same for the backward end, whatever the argument order.
        assert!(!no_u_turn(
            &unit,
            &[-1.0, 0.1],
            &[1.0, 0.0],
            &[0.5, 0.1],
            None
        ));
        // p♯ = M⁻¹p, not p: p·ρ = 1 − 0.5 > 0, but with M⁻¹ = diag(1, 4), p♯·ρ = 1 − 2 < 0.
        let (p, rho) = ([1.0_f64, -1.0], [1.0_f64, 0.5]);
        assert!(no_u_turn(&unit, &p, &p, &rho, None));
        assert!(!no_u_turn(&[1.0, 4.0], &p, &p, &rho, None));
        // `extra` is added to ρ: (−1, 0) + (2, 0) = (1, 0), along both ends.
        let (pa, pb) = ([1.0_f64, 0.0], [2.0_f64, 1.0]);
        assert!(!no_u_turn(&unit, &pa, &pb, &[-1.0, 0.0], None));
        assert!(no_u_turn(&unit, &pa, &pb, &[-1.0, 0.0], Some(&[2.0, 0.0])));
        // Orthogonal is a turn (the criterion is strict).
        assert!(!no_u_turn(
            &unit,
            &[0.0, 1.0],
            &[1.0, 0.0],
            &[1.0, 0.0],
            None
        ));
    }

    #[test]
    fn log_add_exp_is_exact_at_the_edges() {
        let inf = f64::NEG_INFINITY;
        assert_eq!(log_add_exp(inf, inf), inf);
        assert_eq!(log_add_exp(inf, 0.5), 0.5);
        // ln(e + e) = 1 + ln 2, to a couple of ulps.
        assert!((log_add_exp(1.0, 1.0) - (1.0 + 2f64.ln())).abs() < 1e-15);
    }

    /// The Gaussian (quadratic-potential) linear regression posterior's problem, p = 5.
    fn gaussian() -> LinRegProblem<f64> {
        LinReg::<f64>::problem(100, 5, 0.5, 31)
    }

    #[test]
    fn leapfrog_backward_retraces_forward() {
        let g = gaussian();
        let post = Posterior::new(&g.model, g.w_star.clone(), &Default::default());
        let mut chain = Chain::new(&post, 10);
        let mut rng = chain_rng("run_rev", 0);
        chain.start_trajectory(&mut rng);
        let p0 = chain.ends[FORWARD].p.clone();
        let eps = 0.01;
        for _ in 0..50 {
            chain.leapfrog(FORWARD, eps);
        }
        assert!(
            chain.ends[FORWARD].x != chain.cur.x,
            "the trajectory must move"
        );
        for _ in 0..50 {
            chain.leapfrog(FORWARD, -eps);
        }
        // Leapfrog is exactly reversible in exact arithmetic; 100 steps of rounding at
        // |x| ~ 1 leave differences of a few hundred ulps at most, far below 1e-10.
        for (a, b) in chain.ends[FORWARD].x.iter().zip(&chain.cur.x) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        for (a, b) in chain.ends[FORWARD].p.iter().zip(&p0) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
    }

    #[test]
    fn a_tiny_step_conserves_energy_over_the_tree() {
        let g = gaussian();
        let post = Posterior::new(&g.model, g.w_star.clone(), &Default::default());
        let mut chain = Chain::new(&post, 6);
        let mut rng = chain_rng("run_energy", 0);
        // Curvatures nβh are at most a few hundred here, so ω = √(nβh) ≲ 20 and εω ≲ 2e-3 at
        // ε = 1e-4. Leapfrog's energy error on a quadratic potential is O((εω)²) times the
        // kinetic energy (~p/2 = 2.5): ≲ 1e-5, well under the 1e-4 asserted.
        for _ in 0..20 {
            let t = chain.transition(1e-4, 1000.0, &mut rng);
            assert!(t.max_abs_energy_error < 1e-4, "{t:?}");
            assert!(!t.divergent);
            // With almost no energy error every point is accepted: the statistic is ~1.
            assert!(t.accept_stat > 0.999, "{t:?}");
            // Such short steps cannot turn within 2^5 steps: the tree reaches the limit.
            assert_eq!(t.depth, 6, "{t:?}");
            assert_eq!(t.n_leapfrog, 63, "{t:?}");
            assert!(chain.cur.x.iter().all(|x| x.is_finite()));
        }
    }

    #[test]
    fn the_tree_stops_when_the_trajectory_turns() {
        // With a well-sized step (εω ~ 0.1–0.3), a Gaussian turns after about half a period,
        // π/ω / ε ≈ 10–30 steps: the tree stops long before depth 10 (1023 steps).
        let g = gaussian();
        let post = Posterior::new(&g.model, g.w_star.clone(), &Default::default());
        let mut chain = Chain::new(&post, 10);
        let mut rng = chain_rng("run_turn", 0);
        let mut depths = 0;
        for _ in 0..50 {
            let t = chain.transition(0.01, 1000.0, &mut rng);
            assert!(t.n_leapfrog < 1023, "{t:?}");
            depths += t.depth;
        }
        assert!(depths < 50 * 9, "mean depth {}", depths as f64 / 50.0);
    }

    #[test]
    fn config_defaults_are_the_presets() {
        let cfg: NutsConfig =
            serde_yaml::from_str("{warmup: 10, draws: 10, step_size: 0.1}").expect("parses");
        assert_eq!(cfg.max_tree_depth, 10);
        assert_eq!(cfg.target_acceptance, 0.8);
        assert_eq!(cfg.max_energy_error, 1000.0);
    }
}
