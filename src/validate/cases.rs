//! The validation cases: networks whose learning coefficient is known, built for real.
//!
//! Each [`Case`] is a [`TargetConfig`] that goes through the production path, [`build_target`]
//! (teacher, data, training of the student MLP to w*), plus a posterior config and the true
//! value its LLC estimate must match. In: a case and the precision. Out: a [`BuiltCase`] with
//! the MLP's loss, w*, the posterior config, the truth and the checks of w*.
//!
//! * `regular`: linear regression, y = Wx + b (depth 0, identity, bias), in_dim 39, out_dim 1,
//!   so d = 40. The loss is exactly quadratic with Hessian H = (2/n) X̃ᵀX̃, X̃ = [X, 1], so the
//!   estimator's expectation at finite nβ is exactly ½ tr(nβH (nβH + γI)⁻¹): 19.86 here, not
//!   d/2 = 20. The posterior is the sweep's default, β = 1/ln n (nβ ≈ 80). d = 40 rather than a
//!   handful because the LLC draws of a Gaussian posterior have relative spread √(2/d): at
//!   d = 40 HMC's 3 % tolerance is about four standard errors even with `--quick`'s draws.
//! * `dln432`, `dln333`: deep linear networks `[4,3,2]` and `[3,3,3]` (one hidden layer, identity,
//!   no bias) with a full-rank random teacher of the same architecture, so r = min(widths) and
//!   Aoyagi's λ is 4.0 and 4.5. λ is the nβ → ∞ limit; at finite nβ the expectation is lower.
//!   At nβ = 300 (β fixed) and γ = 4 it is close: the quadratic approximation
//!   ½ tr(nβH (nβH + γI)⁻¹) with H the MLP's Hessian at w* is 3.958 and 4.451 for these
//!   targets (1.1 % below λ; a unit test pins it within 2 %). H has exactly 2λ non-zero
//!   eigenvalues (8 and 9, in 0.34–7.9 and 0.20–8.6), the rest span the fibre of equivalent
//!   parameters; its curvature is the only non-quadratic effect, and it is small: HMC with the
//!   default preset lands within ±3 % of λ over 20 chain seeds, about what its Monte Carlo
//!   error (1–1.2 %) allows.
//!
//!   Why γ = 4 and not the sweeps' default 1: along the fibre (W₁ → AW₁, W₂ → W₂A⁻¹) the
//!   transverse curvature scales like ‖A‖² and ‖A⁻¹‖², and the localization term is all that
//!   bounds A. At γ = 1 the posterior reaches parts of the fibre much stiffer than the
//!   neighbourhood of w*: there a step size tuned to the rest of the posterior diverges, chains stall for
//!   hundreds of transitions (up to 1,000 divergences in a run), and the acceptance rate of a
//!   whole run wanders by ±0.05–0.1 around what warmup adapted to (measured at a fixed step
//!   size: the integrated autocorrelation time of the acceptance is 35–115 transitions, and
//!   2,000-draw means differ by 0.03 between halves of a run). HMC's acceptance could then not
//!   be judged, only its estimate, which stays within 4 %. At γ = 4 the fibre is half as wide,
//!   divergences are rare, and over 20 seeds the acceptance lands within 0.03 of the target;
//!   the truth moves by 1 % (above). A larger nβ would not help: it stretches the ratio
//!   between the flat fibre (width about 1/√γ) and the stiffest transverse direction
//!   (1/√(nβ h_max) ≈ 0.02), which the default presets must cross within their budgets, and
//!   SGLD's preset step (1e-4) is only accurate while 1e-4 · nβ · h_max (≈ 0.26 here) is well
//!   below 1.
//!
//! n = 500 rows of x ~ N(0, I) and Gaussian noise of scale 0.1. The posterior of these models
//! depends on the data only through Σ̂ = X̃ᵀX̃/n and the least-squares map B̂ (for the map P(w)
//! a network computes, L_n(w) − min L_n = tr((P − B̂) Σ̂ (P − B̂)ᵀ)), so a larger n would only
//! cost time; a smaller one would let Σ̂ stray further from I. The teachers (seeds 1, 2, 3; N(0, 1/fan_in) weights) are fixed, so the
//! truths are too.
//!
//! The trained cases go through the defaults a new user gets (Adam, then the L-BFGS finish; β =
//! 1/ln n, γ = 1) at the sizes issue reports used: `trained_regular` (6 parameters, n = 5,000),
//! and deep linear networks with full-rank teachers at n = 10,000 of two (`trained_dln432`,
//! `trained_dln333`), three (`trained_dln3333`) and four (`trained_dln43332`) weight layers,
//! judged against Aoyagi's λ. λ is the n → ∞ limit, and it is the finite-n truth only when the
//! teacher's map has no singular value near the posterior's resolution 1/√(nβ) (here 0.03):
//! products of random Gaussian layers often have one (24 of the 26 seeds 14–39 for
//! `[3,3,3,3]`). So each teacher is checked against [`MIN_TEACHER_RESOLUTION`] by a unit test,
//! and `trained_dln3333` uses seed 44, the first from 14 up whose smallest singular value is
//! at least 5/√(nβ) (0.169). Its former seed 14 (0.0037) gave 4.25–4.32 with every sampler.
//!
//! Two trained cases have rank-deficient teachers, the other half of Aoyagi's formula:
//! `trained_dln323_r0`, `[3,2,3]` with a zero teacher (`weight_scale: 0`, y is the noise alone;
//! r = 0, λ = 2.5), and `trained_dln5346_r1`, `[5,3,4,6]` with a teacher 5 → 1 → 6 (r = 1,
//! λ = 8). Their teachers' maps have exactly r non-zero singular values (a unit test checks
//! the rank and the resolution of those r).
//!
//! w* must be the minimum the theory assumes. A deep linear network's map is the product of
//! its layers, of rank at most its narrowest layer k, so min L_n is the reduced-rank regression
//! loss at rank k, computed exactly ([`deep_linear_min_loss`], the one training checks w*
//! against); for the full-rank architectures (k = out_dim or in_dim) that is the ordinary
//! least-squares loss. [`build`] refuses a target
//! whose training stopped short of it by more than [`MAX_EXCESS`] in LLC units
//! ([`MAX_EXCESS_DEGENERATE`] for the rank-deficient cases, whose minima are degenerate).

use ndarray::Array2;

use super::ValidateError;
use super::oracles::{aoyagi_deep_linear_llc, expected_llc_from_hessian};
use crate::config::schema::{
    Activation, BetaMode, DataConfig, Finish, Init, ModelConfig, Optimizer, PosteriorConfig,
    ResolvedTeacher, TargetConfig, TrainingConfig,
};
use crate::data::{stream_rng, streams};
use crate::nn::{Mlp, MlpLoss};
use crate::numeric::linalg::{gram, singular_values, with_ones_column};
use crate::numeric::{Precision, Real};
use crate::train::{build_target, deep_linear_min_loss};

/// Rows of data of every case.
pub const N_DATA: usize = 500;
/// Gaussian noise scale: L0 ≈ out_dim · σ² · (1 − k/n) for k regressors per output.
pub const NOISE: f64 = 0.1;
/// nβ of the deep linear cases (β fixed): see the module doc.
pub const DLN_N_BETA: f64 = 300.0;
/// Localization strength γ of the deep linear cases: see the module doc for why not 1.
pub const DLN_GAMMA: f64 = 4.0;
/// Rows of the trained regression case (the size the training issue measured on).
pub const TRAINED_REGULAR_N: usize = 5_000;
/// Rows of the trained deep linear cases.
pub const TRAINED_DLN_N: usize = 10_000;
/// Largest nβ (L0 − min L_n) accepted, as a fraction of the truth: a w* this far above the
/// minimum lowers the estimate by about as much, 0.1 % here, invisible beside the tolerances.
pub const MAX_EXCESS: f64 = 1e-3;
/// [`MAX_EXCESS`] of the rank-deficient cases. Their minimum is degenerate: along the
/// directions the teacher leaves empty the loss grows like the fourth power of the weights (a
/// product of small layers), so the default gradient criterion (‖g‖ ≤ 0.1·ln n/n) stops
/// further from it. Measured: nβ(L0 − min L_n) = 6.8e-3 (0.27 % of λ, rank 0) and 9.3e-3
/// (0.12 %, rank 1), a bias of as much on the estimate, below a tenth of the samplers' Monte
/// Carlo error (about 1 %) and tolerances (5–10 %).
pub const MAX_EXCESS_DEGENERATE: f64 = 5e-3;

/// Smallest accepted s_min·√(nβ) for a deep linear case's teacher, s_min the smallest singular
/// value of the linear map it computes. The posterior resolves the map only to about 1/√(nβ),
/// so a teacher with a singular value near that scale is, at this n, a lower-rank teacher, and
/// its estimate falls between the two ranks' λ. Measured on `[3,3,3,3]` at n = 10,000 with seed
/// 14 (s_min = 0.0037, 0.12/√(nβ)): HMC, NUTS and SGLD gave 4.25–4.32 for λ = 4.5, and HMC
/// rose with n to 4.40, 4.45 and 4.58 at 40k, 160k and 640k rows. The lowest case here,
/// `dln333` at nβ = 300, has 2.27; the trained cases have 5.6 and more.
pub const MIN_TEACHER_RESOLUTION: f64 = 2.0;

/// A model whose LLC is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Regular,
    Dln432,
    Dln333,
    /// The cases a new user meets: default training and the default posterior.
    TrainedRegular,
    TrainedDln432,
    TrainedDln333,
    /// Three and four weight layers: the deeper singularities the two-layer cases lack.
    TrainedDln3333,
    TrainedDln43332,
    /// Rank-deficient teachers: a deep linear student whose teacher's map has lower rank than
    /// the student can represent, the other half of Aoyagi's formula.
    TrainedDln323Rank0,
    TrainedDln5346Rank1,
}

impl Case {
    pub const ALL: [Case; 10] = [
        Case::Regular,
        Case::Dln432,
        Case::Dln333,
        Case::TrainedRegular,
        Case::TrainedDln432,
        Case::TrainedDln333,
        Case::TrainedDln3333,
        Case::TrainedDln43332,
        Case::TrainedDln323Rank0,
        Case::TrainedDln5346Rank1,
    ];
    pub const NAMES: [&'static str; 10] = [
        "regular",
        "dln432",
        "dln333",
        "trained_regular",
        "trained_dln432",
        "trained_dln333",
        "trained_dln3333",
        "trained_dln43332",
        "trained_dln323_r0",
        "trained_dln5346_r1",
    ];

    /// What `validate` checks when no `--cases` are given: the cases that take seconds. On the
    /// trained deep linear cases (n = 10,000) NUTS's preset takes about a minute each (its
    /// trees reach depth 10 at target_acceptance 0.99); name them to run them.
    pub const DEFAULT_NAMES: [&'static str; 4] = ["regular", "dln432", "dln333", "trained_regular"];

    pub fn name(self) -> &'static str {
        match self {
            Case::Regular => "regular",
            Case::Dln432 => "dln432",
            Case::Dln333 => "dln333",
            Case::TrainedRegular => "trained_regular",
            Case::TrainedDln432 => "trained_dln432",
            Case::TrainedDln333 => "trained_dln333",
            Case::TrainedDln3333 => "trained_dln3333",
            Case::TrainedDln43332 => "trained_dln43332",
            Case::TrainedDln323Rank0 => "trained_dln323_r0",
            Case::TrainedDln5346Rank1 => "trained_dln5346_r1",
        }
    }

    /// Trained with the defaults and sampled on the default posterior, as a new user would:
    /// these are judged on health too ([`super::check`]).
    pub fn is_trained(self) -> bool {
        matches!(
            self,
            Case::TrainedRegular
                | Case::TrainedDln432
                | Case::TrainedDln333
                | Case::TrainedDln3333
                | Case::TrainedDln43332
                | Case::TrainedDln323Rank0
                | Case::TrainedDln5346Rank1
        )
    }

    fn is_deep_linear(self) -> bool {
        matches!(
            self,
            Case::Dln432
                | Case::Dln333
                | Case::TrainedDln432
                | Case::TrainedDln333
                | Case::TrainedDln3333
                | Case::TrainedDln43332
                | Case::TrainedDln323Rank0
                | Case::TrainedDln5346Rank1
        )
    }

    /// Rows of data.
    pub fn n_data(self) -> usize {
        match self {
            Case::Regular | Case::Dln432 | Case::Dln333 => N_DATA,
            Case::TrainedRegular => TRAINED_REGULAR_N,
            Case::TrainedDln432
            | Case::TrainedDln333
            | Case::TrainedDln3333
            | Case::TrainedDln43332
            | Case::TrainedDln323Rank0
            | Case::TrainedDln5346Rank1 => TRAINED_DLN_N,
        }
    }

    pub fn from_name(name: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == name)
    }

    /// One line for people: what the model is.
    pub fn describe(self) -> &'static str {
        match self {
            Case::Regular => "linear regression, d = 40 (in 39 + bias, out 1)",
            Case::Dln432 => "deep linear network [4,3,2], full-rank teacher (r = 2)",
            Case::Dln333 => "deep linear network [3,3,3], full-rank teacher (r = 3)",
            Case::TrainedRegular => {
                "linear regression, 6 parameters, n = 5,000, default training and posterior"
            }
            Case::TrainedDln432 => {
                "deep linear [4,3,2], n = 10,000, default training and posterior (λ = 4)"
            }
            Case::TrainedDln333 => {
                "deep linear [3,3,3], n = 10,000, default training and posterior (λ = 4.5)"
            }
            Case::TrainedDln3333 => {
                "deep linear [3,3,3,3] (3 layers), n = 10,000, default training and posterior"
            }
            Case::TrainedDln43332 => {
                "deep linear [4,3,3,3,2] (4 layers), n = 10,000, default training and posterior"
            }
            Case::TrainedDln323Rank0 => {
                "deep linear [3,2,3], zero teacher (r = 0, λ = 2.5), n = 10,000, defaults"
            }
            Case::TrainedDln5346Rank1 => {
                "deep linear [5,3,4,6], rank-1 teacher (λ = 8), n = 10,000, defaults"
            }
        }
    }

    /// A deep linear case whose teacher has lower rank than the student can represent: its
    /// minimum is degenerate ([`MAX_EXCESS_DEGENERATE`]).
    fn is_rank_deficient(self) -> bool {
        matches!(self, Case::TrainedDln323Rank0 | Case::TrainedDln5346Rank1)
    }

    /// How far above min L_n training may leave w*, as a fraction of the truth (in LLC units).
    pub fn max_excess(self) -> f64 {
        if self.is_rank_deficient() {
            MAX_EXCESS_DEGENERATE
        } else {
            MAX_EXCESS
        }
    }

    /// The rank of the linear map a deep linear case's teacher computes (what Aoyagi's formula
    /// calls r): min(widths) for the same-architecture teachers, 0 for the zero teacher, 1 for
    /// a teacher with a one-unit hidden layer. `None` for the regression cases.
    pub fn teacher_rank(self) -> Option<usize> {
        match self {
            Case::TrainedDln323Rank0 => Some(0),
            Case::TrainedDln5346Rank1 => Some(1),
            _ if self.is_deep_linear() => self.widths().into_iter().min(),
            _ => None,
        }
    }

    /// The teacher: the student's architecture with its own draw, except for the
    /// rank-deficient cases: all weights zero (y is the noise alone), or a one-unit hidden
    /// layer (in → 1 → out, so its map has rank 1).
    fn teacher(self, student: &ModelConfig) -> ResolvedTeacher {
        match self {
            Case::TrainedDln323Rank0 => ResolvedTeacher {
                model: student.clone(),
                weight_scale: 0.0,
            },
            Case::TrainedDln5346Rank1 => ResolvedTeacher {
                model: ModelConfig {
                    depth: 1,
                    widths: Some(vec![1]),
                    ..student.clone()
                },
                weight_scale: 1.0,
            },
            _ => ResolvedTeacher {
                model: student.clone(),
                weight_scale: 1.0,
            },
        }
    }

    /// (in_dim, hidden widths, out_dim, bias)
    fn architecture(self) -> (usize, Vec<usize>, usize, bool) {
        match self {
            Case::Regular => (39, vec![], 1, true),
            Case::Dln432 | Case::TrainedDln432 => (4, vec![3], 2, false),
            Case::Dln333 | Case::TrainedDln333 => (3, vec![3], 3, false),
            Case::TrainedRegular => (5, vec![], 1, true),
            Case::TrainedDln3333 => (3, vec![3, 3], 3, false),
            Case::TrainedDln43332 => (4, vec![3, 3, 3], 2, false),
            Case::TrainedDln323Rank0 => (3, vec![2], 3, false),
            Case::TrainedDln5346Rank1 => (5, vec![3, 4], 6, false),
        }
    }

    /// The layer widths [in, hidden…, out] of a deep linear case.
    fn widths(self) -> Vec<usize> {
        let (input, hidden, output, _) = self.architecture();
        std::iter::once(input)
            .chain(hidden)
            .chain(std::iter::once(output))
            .collect()
    }

    /// The singular values (ascending) of the linear map a deep linear case's teacher computes,
    /// the product W₁W₂⋯ of its layers as `build_target` draws them; `None` for other cases.
    pub fn teacher_singular_values(self) -> Option<Vec<f64>> {
        if !self.is_deep_linear() {
            return None;
        }
        let cfg = self.target_config(Precision::F64);
        let teacher = Mlp::new(&cfg.teacher.model).expect("the cases' teachers are valid");
        let w: Vec<f64> = teacher.init_params(
            cfg.teacher.model.init,
            cfg.teacher.weight_scale,
            &mut stream_rng(cfg.seed, streams::TEACHER_INIT),
        );
        let layout = teacher.layout();
        let product = (0..layout.layers().len())
            .map(|l| layout.weight(&w, l).to_owned())
            .reduce(|acc, wl| acc.dot(&wl))
            .expect("a network has at least one layer");
        Some(singular_values(product.view()))
    }

    /// nβ of the case's posterior at its data size.
    pub fn n_beta(self) -> f64 {
        let n = self.n_data();
        n as f64 * self.posterior().beta(n)
    }

    /// The target: the student, its teacher ([`Case::teacher`]), data and training.
    pub fn target_config(self, precision: Precision) -> TargetConfig {
        let (in_dim, hidden, out_dim, bias) = self.architecture();
        let model = ModelConfig {
            in_dim,
            out_dim,
            depth: hidden.len(),
            widths: Some(hidden),
            target_params: None,
            activation: Activation::Identity,
            bias,
            skip_connections: false,
            // N(0, 1/fan_in) weights: a teacher whose product has singular values of order 1,
            // so no direction is nearly rank-deficient at nβ = 300.
            init: Init::Lecun,
        };
        TargetConfig {
            teacher: self.teacher(&model),
            model,
            data: DataConfig {
                ..DataConfig::gauss_iso(self.n_data(), NOISE)
            },
            training: if self.is_trained() {
                default_training()
            } else {
                Case::training()
            },
            seed: self.seed(),
            precision,
        }
    }

    fn seed(self) -> u64 {
        match self {
            Case::Regular => 1,
            Case::Dln432 => 2,
            Case::Dln333 => 3,
            Case::TrainedRegular => 11,
            Case::TrainedDln432 => 12,
            Case::TrainedDln333 => 13,
            Case::TrainedDln3333 => 44,
            Case::TrainedDln43332 => 15,
            Case::TrainedDln323Rank0 => 16,
            Case::TrainedDln5346Rank1 => 17,
        }
    }

    /// Full-batch gradient descent to the minimum: plain sgd converges linearly to the exact
    /// minimum, where adam's normalized steps would hover around it. lr = 0.05 is stable for
    /// these losses (largest Hessian eigenvalues 3.2, 7.9 and 8.6: lr · h_max < 2). Measured:
    /// nβ(L0 − min L_n) is below 1e-6 after 1,000 steps and at rounding level (1e-14) after
    /// 2,000; 5,000 leaves a margin and costs well under a second.
    fn training() -> TrainingConfig {
        TrainingConfig {
            optimizer: Optimizer::Sgd,
            learning_rate: 0.05,
            steps: 5_000,
            batch_size: None,
            weight_decay: 0.0,
            eval_every: 1000,
            early_stop_tol: None,
            finish: Finish::None,
            // Down to rounding level (measured below), not just the default criterion.
            grad_tol: Some(1e-10),
        }
    }

    pub fn posterior(self) -> PosteriorConfig {
        match self {
            // The sweep's default posterior: the regular truth is exact at any nβ.
            Case::Regular | Case::TrainedRegular => PosteriorConfig::default(),
            Case::TrainedDln432
            | Case::TrainedDln333
            | Case::TrainedDln3333
            | Case::TrainedDln43332
            | Case::TrainedDln323Rank0
            | Case::TrainedDln5346Rank1 => PosteriorConfig::default(),
            Case::Dln432 | Case::Dln333 => PosteriorConfig {
                beta_mode: BetaMode::Fixed,
                beta0: DLN_N_BETA / N_DATA as f64,
                gamma: DLN_GAMMA,
            },
        }
    }
}

/// The sweep's default training (the built-in defaults, which config/workflow.yaml repeats):
/// Adam for half the steps, then the L-BFGS finish.
fn default_training() -> TrainingConfig {
    TrainingConfig {
        optimizer: Optimizer::Adam,
        learning_rate: 1e-3,
        steps: 2000,
        batch_size: None,
        weight_decay: 0.0,
        eval_every: 100,
        early_stop_tol: None,
        finish: Finish::Lbfgs,
        grad_tol: None,
    }
}

/// A case built for real: the trained MLP and everything needed to judge an estimate.
pub struct BuiltCase<F> {
    pub case: Case,
    pub loss: MlpLoss<F>,
    pub w_star: Vec<F>,
    pub posterior: PosteriorConfig,
    /// The value the estimate must match.
    pub truth: f64,
    /// L0 = L_n(w*) and min L_n (least squares, in f64).
    pub l0: f64,
    pub l_min: f64,
    /// What L0 should be about: out_dim · σ² · (1 − k/n), k regressors per output.
    pub noise_floor: f64,
    pub n_beta: f64,
}

/// Builds `case` with [`build_target`] and checks that w* is at the minimum of L_n.
pub fn build<F: Real>(case: Case) -> Result<BuiltCase<F>, ValidateError> {
    // build_target checks that the config's precision is F's.
    let precision = if F::NAME == Precision::F32.as_str() {
        Precision::F32
    } else {
        Precision::F64
    };
    let cfg = case.target_config(precision);
    let built = build_target::<F>(&cfg).map_err(|e| ValidateError::Target {
        case: case.name(),
        message: e.to_string(),
    })?;
    let n = built.dims.n;
    let posterior = case.posterior();
    let n_beta = n as f64 * posterior.beta(n);
    let x = built.x.mapv(|v| v.f64());
    let y = built.y.mapv(|v| v.f64());
    let (_, _, out_dim, bias) = case.architecture();
    // A deep linear student's map has rank at most its narrowest layer: its minimum is the
    // reduced-rank one (the least-squares one when that layer is as wide as the output), the
    // same that training checks its w* against.
    let l_min =
        deep_linear_min_loss(&built.student, &x, &y).ok_or_else(|| ValidateError::Target {
            case: case.name(),
            message: "the data do not determine the least-squares minimum (XᵀX is singular)".into(),
        })?;
    let design = if bias { with_ones_column(x.view()) } else { x };
    let linalg = |e: crate::numeric::linalg::LinalgError| ValidateError::Target {
        case: case.name(),
        message: e.to_string(),
    };
    let truth = if let Some(rank) = case.teacher_rank() {
        aoyagi_deep_linear_llc(&case.widths(), rank)
    } else {
        let h = regular_hessian(&design, out_dim);
        expected_llc_from_hessian(h.view(), n_beta, posterior.gamma).map_err(linalg)?
    };
    let k = design.ncols() as f64;
    let noise_floor = out_dim as f64 * NOISE * NOISE * (1.0 - k / n as f64);
    let excess = n_beta * (built.l0 - l_min);
    // False for NaN too: a non-finite L0 is no minimum.
    let at_minimum = excess.abs() <= case.max_excess() * truth;
    if !at_minimum {
        return Err(ValidateError::NotAtMinimum {
            case: case.name(),
            l0: built.l0,
            l_min,
            excess,
            limit: case.max_excess() * truth,
        });
    }
    let mlp = built.student;
    Ok(BuiltCase {
        case,
        loss: MlpLoss::new(mlp, built.x, built.y).map_err(|e| ValidateError::Target {
            case: case.name(),
            message: e.to_string(),
        })?,
        w_star: built.w_star,
        posterior,
        truth,
        l0: built.l0,
        l_min,
        noise_floor,
        n_beta,
    })
}

/// The Hessian of L_n(W, b) = (1/n) Σ ‖y − Wx − b‖² for `out_dim` outputs: (2/n) X̃ᵀX̃ once per
/// output (block diagonal; the outputs do not interact), X̃ = `design` = [X, 1].
fn regular_hessian(design: &Array2<f64>, out_dim: usize) -> Array2<f64> {
    let n = design.nrows() as f64;
    let block = gram(design.view()) * (2.0 / n);
    let k = block.nrows();
    let mut h = Array2::<f64>::zeros((k * out_dim, k * out_dim));
    for o in 0..out_dim {
        h.slice_mut(ndarray::s![o * k..(o + 1) * k, o * k..(o + 1) * k])
            .assign(&block);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posterior::{LossModel, Rows};

    /// Every deep linear teacher has the rank its truth assumes, and resolves it at the case's
    /// nβ (see [`MIN_TEACHER_RESOLUTION`]): its r largest singular values are at least
    /// MIN_TEACHER_RESOLUTION/√(nβ), and the rest are zero up to rounding (a product of layers
    /// with a one-unit layer, or of zero layers, has them exactly zero; its Gram matrix's
    /// eigenvalues come back within ~1e-16 of the largest). This fails if a change to the
    /// teacher's draw (init, streams, seed, scale) leaves a case with another effective rank.
    #[test]
    fn deep_linear_teachers_have_and_resolve_their_rank() {
        let mut checked = 0;
        for case in Case::ALL {
            let Some(sv) = case.teacher_singular_values() else {
                continue;
            };
            let rank = case
                .teacher_rank()
                .expect("a deep linear case has a teacher rank");
            let widths = case.widths();
            let map_dims = widths[0].min(*widths.last().unwrap());
            assert_eq!(
                sv.len(),
                map_dims,
                "{}: one singular value per dimension",
                case.name()
            );
            let largest = sv.last().copied().unwrap_or(0.0);
            let (zeros, kept) = sv.split_at(map_dims - rank);
            for &z in zeros {
                assert!(
                    z <= 1e-7 * largest.max(1.0),
                    "{}: {sv:?} has rank > {rank}",
                    case.name()
                );
            }
            if let Some(&smallest) = kept.first() {
                let resolution = smallest * case.n_beta().sqrt();
                assert!(
                    resolution >= MIN_TEACHER_RESOLUTION,
                    "{}: singular value {smallest:.4} is {resolution:.2}/√(nβ), below {MIN_TEACHER_RESOLUTION}",
                    case.name(),
                );
            }
            checked += 1;
        }
        assert_eq!(
            checked, 8,
            "all eight deep linear cases have a teacher product"
        );
    }

    /// The Hessian of the model's loss at `w` by central differences of its exact gradient.
    /// Step 1e-4: the truncation error is h²/6 times third derivatives (zero for the quadratic
    /// regular loss, O(1) for deep linear ones: ~1e-9), the rounding error ε|g|/h ≈ 1e-12.
    fn numerical_hessian(model: &MlpLoss<f64>, w: &[f64]) -> Array2<f64> {
        const H: f64 = 1e-4;
        let p = model.dim();
        let mut ws = model.workspace(model.n_data());
        let (mut plus, mut minus) = (vec![0.0; p], vec![0.0; p]);
        let mut hess = Array2::<f64>::zeros((p, p));
        let mut x = w.to_vec();
        for j in 0..p {
            x[j] = w[j] + H;
            model.loss_grad(&x, Rows::All, &mut plus, &mut ws);
            x[j] = w[j] - H;
            model.loss_grad(&x, Rows::All, &mut minus, &mut ws);
            x[j] = w[j];
            for i in 0..p {
                hess[[i, j]] = (plus[i] - minus[i]) / (2.0 * H);
            }
        }
        // Symmetrize away the difference noise.
        (&hess + &hess.t()) * 0.5
    }

    /// ½ tr(nβH(nβH + γI)⁻¹) with H the numerical Hessian of the real MLP loss at w*.
    fn quadratic_llc(b: &BuiltCase<f64>) -> f64 {
        let h = numerical_hessian(&b.loss, &b.w_star);
        expected_llc_from_hessian(h.view(), b.n_beta, b.posterior.gamma).unwrap()
    }

    // Every case, built once per test that needs it (training takes well under a second).
    fn built(case: Case) -> BuiltCase<f64> {
        build::<f64>(case).unwrap_or_else(|e| panic!("{}: {e}", case.name()))
    }

    #[test]
    fn names_round_trip() {
        for (case, name) in Case::ALL.into_iter().zip(Case::NAMES) {
            assert_eq!(case.name(), name);
            assert_eq!(Case::from_name(name), Some(case));
        }
        assert_eq!(Case::from_name("dln"), None);
    }

    #[test]
    fn regular_truth_is_the_mlp_hessian_formula() {
        // The truth comes from X̃ᵀX̃; the MLP's own loss, differentiated numerically, must have
        // exactly that Hessian (its loss is quadratic, so central differences are exact up to
        // rounding ~1e-12 relative). This ties the formula to the real parameterization.
        let b = built(Case::Regular);
        assert_eq!(b.loss.dim(), 40, "d = in_dim + 1");
        let q = quadratic_llc(&b);
        assert!((q / b.truth - 1.0).abs() < 1e-9, "{q} vs {}", b.truth);
        // At nβ = n/ln n ≈ 80 it sits a little below d/2 = 20, as it must.
        assert!(b.truth < 20.0 && b.truth > 19.5, "{}", b.truth);
    }

    #[test]
    fn deep_linear_truths_are_close_at_this_n_beta() {
        // The justification of nβ = 300 and γ = 4 (module doc): the quadratic approximation
        // of the finite-nβ expectation is within 2 % of λ. Measured: 3.958 and 4.451.
        for (case, lambda) in [(Case::Dln432, 4.0), (Case::Dln333, 4.5)] {
            let b = built(case);
            assert_eq!(b.truth, lambda);
            assert_eq!(b.n_beta, DLN_N_BETA);
            assert_eq!(b.posterior.gamma, DLN_GAMMA);
            let q = quadratic_llc(&b);
            assert!(q < lambda && q > 0.98 * lambda, "{}: {q}", case.name());
        }
    }

    #[test]
    fn w_star_is_the_least_squares_minimum_and_l0_the_noise_level() {
        for case in Case::ALL {
            let b = built(case);
            // The hand-trained cases reach rounding level; the trained ones stop at the default
            // gradient criterion, ‖g‖ ≤ 0.1·ln(n)/n, which in a basin whose smallest non-flat
            // curvature is h leaves at most nβ‖g‖²/(2h): with nβ ≈ 1086, ‖g‖ ≤ 9.2e-5 and
            // h ≥ 0.2 (the deep linear cases' smallest non-zero Hessian eigenvalue), 2.3e-5.
            // Measured: 3.2e-8 (trained_regular), 1.1e-6 (trained_dln432). build() itself
            // refuses more than MAX_EXCESS.
            let excess = b.n_beta * (b.l0 - b.l_min);
            // The rank-deficient cases' minima are degenerate ([`MAX_EXCESS_DEGENERATE`];
            // measured 6.8e-3 and 9.3e-3).
            let bar = if case.is_rank_deficient() {
                2e-2
            } else if case.is_trained() {
                1e-4
            } else {
                1e-9
            };
            assert!(
                excess.abs() < bar,
                "{}: nβ(L0 − min) = {excess}",
                case.name()
            );
            // L0/(σ²·out) is χ² with out·(n − k) ≥ 460 degrees of freedom over that count:
            // std ≤ √(2/460) ≈ 6.6 %, so 25 % is a > 3.5σ band that still catches noise not
            // being added, or added twice.
            let ratio = b.l0 / b.noise_floor;
            assert!(
                (ratio - 1.0).abs() < 0.25,
                "{}: L0 / noise floor = {ratio}",
                case.name()
            );
        }
    }

    #[test]
    fn f32_cases_build_at_the_minimum_too() {
        for case in Case::ALL {
            let b = build::<f32>(case).unwrap_or_else(|e| panic!("{}: {e}", case.name()));
            // The same data rounded to f32 (~6e-8 relative) moves the regular truth by about as
            // much and leaves Aoyagi's λ unchanged; 1e-5 is a wide guard.
            let twin = built(case);
            assert!((b.truth / twin.truth - 1.0).abs() < 1e-5, "{}", case.name());
        }
    }
}
