//! Synthetic regression data: inputs x from a configured distribution, outputs y = teacher(x) +
//! noise.
//!
//! Input: a [`DataConfig`], the target seed, the input dimension and the teacher (an [`Mlp`] with
//! its parameters). Output: a [`Dataset`] of X (n × in_dim) and Y (n × out_dim), in f64; callers
//! round to f32 when the sweep runs in f32, so an f32 target sees the same data as its f64 twin up
//! to rounding. Nothing here touches files.
//!
//! Determinism: every random quantity comes from a named sub-stream of the target seed
//! ([`stream_rng`]), so the teacher, the inputs, the noise, the student's initialization and the
//! training minibatches never share a stream: changing the noise model, say, leaves X unchanged.
//!
//! Distributions of x (one row per sample, `d = in_dim`):
//! - `gauss_iso`: N(0, I).
//! - `gauss_aniso`: independent N(0, σ_j²), variances log-spaced from c^-½ to c^½ with
//!   c = `aniso_condition` (largest / smallest = c, geometric mean 1).
//! - `mixture`: `mixture_components` centres μ_k ~ N(0, `mixture_spread`² I); a sample picks a
//!   centre uniformly and adds N(0, I).
//! - `lowdim_manifold`: z ~ N(0, I_k), k = `manifold_dim` ≤ d, embedded smoothly and nonlinearly
//!   as x = A z + sin(B z + c) (sin elementwise), with A, B random d × k matrices of N(0, 1/k)
//!   entries and phases c ~ U(0, 2π) drawn once per data set.
//! - `heavy_tail`: independent Student-t with `tail_df` degrees of freedom.
//!
//! Noise on every output, with σ = `noise_scale`:
//! - `gauss`: σ·N(0, 1).
//! - `hetero`: σ_i·N(0, 1) with σ_i = σ(1 + ‖x_i‖/√d)/2, which grows with ‖x‖ and equals σ at the
//!   typical norm √d of a standard Gaussian input.
//! - `student_t`: σ·t(`tail_df`).
//! - `outliers`: exactly round(`outlier_frac`·n) rows, chosen uniformly, get σ·`outlier_scale`·N(0, 1),
//!   the others σ·N(0, 1).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal, StudentT};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::config::schema::{DataConfig, NoiseModel, XDist};
use crate::nn::{Mlp, NnError};

/// Names of the sub-streams of a target seed.
pub mod streams {
    pub const TEACHER_INIT: &str = "teacher-init";
    pub const DATA_X: &str = "data-x";
    pub const DATA_NOISE: &str = "data-noise";
    pub const STUDENT_INIT: &str = "student-init";
    pub const TRAIN_BATCHES: &str = "train-batches";
}

/// The RNG of sub-stream `stream` of target seed `seed`: xxh3 of the stream name, keyed by the
/// seed, seeds a xoshiro256++ generator. Stable across machines and versions.
pub fn stream_rng(seed: u64, stream: &str) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(xxhash_rust::xxh3::xxh3_64_with_seed(
        stream.as_bytes(),
        seed,
    ))
}

/// A generated data set, in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// n × in_dim inputs.
    pub x: Array2<f64>,
    /// n × out_dim outputs.
    pub y: Array2<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    #[error(
        "data.manifold_dim is {manifold_dim} but the model's in_dim is {in_dim}: the manifold must fit in the input space (manifold_dim <= in_dim)"
    )]
    ManifoldDim { manifold_dim: usize, in_dim: usize },
    #[error("data.{key}: {message}")]
    Distribution { key: &'static str, message: String },
    #[error("teacher: {0}")]
    Teacher(#[from] NnError),
}

/// The data set of a target: X from the `data-x` stream, the teacher's outputs, noise from the
/// `data-noise` stream.
pub fn generate(
    cfg: &DataConfig,
    seed: u64,
    teacher: &Mlp,
    teacher_w: &[f64],
) -> Result<Dataset, DataError> {
    let x = sample_inputs(
        cfg,
        teacher.in_dim(),
        &mut stream_rng(seed, streams::DATA_X),
    )?;
    let mut y = teacher.predict(teacher_w, x.view())?;
    add_noise(
        cfg,
        x.view(),
        &mut y,
        &mut stream_rng(seed, streams::DATA_NOISE),
    )?;
    Ok(Dataset { x, y })
}

/// `cfg.n_data` inputs of dimension `in_dim` from `cfg.x_dist`.
pub fn sample_inputs<R: Rng + ?Sized>(
    cfg: &DataConfig,
    in_dim: usize,
    rng: &mut R,
) -> Result<Array2<f64>, DataError> {
    let (n, d) = (cfg.n_data, in_dim);
    let mut normal = || -> f64 { rng.sample(StandardNormal) };
    let x = match cfg.x_dist {
        XDist::GaussIso => Array2::from_shape_simple_fn((n, d), normal),
        XDist::GaussAniso => {
            let c = cfg.aniso_condition;
            if !(c.is_finite() && c > 0.0) {
                return Err(DataError::Distribution {
                    key: "aniso_condition",
                    message: format!("must be a positive number, got {c}"),
                });
            }
            let std: Array1<f64> = (0..d)
                .map(|j| {
                    let t = if d > 1 {
                        j as f64 / (d - 1) as f64
                    } else {
                        0.5
                    };
                    // variance c^(t − ½), so std c^((t − ½)/2)
                    c.powf((t - 0.5) / 2.0)
                })
                .collect();
            let mut x = Array2::from_shape_simple_fn((n, d), normal);
            x *= &std;
            x
        }
        XDist::Mixture => {
            let k = cfg.mixture_components;
            if k == 0 {
                return Err(DataError::Distribution {
                    key: "mixture_components",
                    message: "must be at least 1".into(),
                });
            }
            let centres = Array2::from_shape_simple_fn((k, d), &mut normal) * cfg.mixture_spread;
            let mut x = Array2::zeros((n, d));
            for mut row in x.rows_mut() {
                let c = rng.random_range(0..k);
                for (xi, &mu) in row.iter_mut().zip(centres.row(c)) {
                    *xi = mu + rng.sample::<f64, _>(StandardNormal);
                }
            }
            x
        }
        XDist::LowdimManifold => {
            let k = cfg.manifold_dim;
            if k == 0 || k > d {
                return Err(DataError::ManifoldDim {
                    manifold_dim: k,
                    in_dim: d,
                });
            }
            let s = 1.0 / (k as f64).sqrt();
            let a = Array2::from_shape_simple_fn((k, d), &mut normal) * s;
            let b = Array2::from_shape_simple_fn((k, d), &mut normal) * s;
            let phase =
                Array1::from_shape_simple_fn(d, || rng.random_range(0.0..std::f64::consts::TAU));
            let z = Array2::from_shape_simple_fn((n, k), || rng.sample(StandardNormal));
            let mut x = z.dot(&a);
            let curved = z.dot(&b) + &phase;
            x.zip_mut_with(&curved, |xi, &u| *xi += u.sin());
            x
        }
        XDist::HeavyTail => {
            let t = student_t(cfg.tail_df)?;
            Array2::from_shape_simple_fn((n, d), || t.sample(rng))
        }
    };
    Ok(x)
}

/// Adds `cfg.noise` to the clean outputs `y` (rows matching the inputs `x`).
pub fn add_noise<R: Rng + ?Sized>(
    cfg: &DataConfig,
    x: ArrayView2<'_, f64>,
    y: &mut Array2<f64>,
    rng: &mut R,
) -> Result<(), DataError> {
    let sigma = cfg.noise_scale;
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(DataError::Distribution {
            key: "noise_scale",
            message: format!("must be >= 0, got {sigma}"),
        });
    }
    let n = y.nrows();
    match cfg.noise {
        NoiseModel::Gauss => y.mapv_inplace(|v| v + sigma * rng.sample::<f64, _>(StandardNormal)),
        NoiseModel::Hetero => {
            let root_d = (x.ncols().max(1) as f64).sqrt();
            for (mut row, xi) in y.rows_mut().into_iter().zip(x.axis_iter(Axis(0))) {
                let norm = xi.iter().map(|v| v * v).sum::<f64>().sqrt();
                let s = sigma * (1.0 + norm / root_d) / 2.0;
                row.mapv_inplace(|v| v + s * rng.sample::<f64, _>(StandardNormal));
            }
        }
        NoiseModel::StudentT => {
            let t = student_t(cfg.tail_df)?;
            y.mapv_inplace(|v| v + sigma * t.sample(rng));
        }
        NoiseModel::Outliers => {
            let f = cfg.outlier_frac;
            if !(f.is_finite() && (0.0..=1.0).contains(&f)) {
                return Err(DataError::Distribution {
                    key: "outlier_frac",
                    message: format!("must be in [0, 1], got {f}"),
                });
            }
            let count = ((f * n as f64).round() as usize).min(n);
            let mut scale = vec![sigma; n];
            for i in rand::seq::index::sample(rng, n, count) {
                scale[i] = sigma * cfg.outlier_scale;
            }
            for (mut row, s) in y.rows_mut().into_iter().zip(scale) {
                row.mapv_inplace(|v| v + s * rng.sample::<f64, _>(StandardNormal));
            }
        }
    }
    Ok(())
}

fn student_t(df: f64) -> Result<StudentT<f64>, DataError> {
    if !(df.is_finite() && df > 0.0) {
        return Err(DataError::Distribution {
            key: "tail_df",
            message: format!("must be a positive number, got {df}"),
        });
    }
    StudentT::new(df).map_err(|e| DataError::Distribution {
        key: "tail_df",
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Activation;

    fn cfg(n: usize, x_dist: XDist, noise: NoiseModel) -> DataConfig {
        DataConfig {
            x_dist,
            noise,
            ..DataConfig::gauss_iso(n, 0.1)
        }
    }

    fn linear_teacher(d: usize, seed: u64) -> (Mlp, Vec<f64>) {
        let mlp = Mlp::from_parts(d, &[], 1, Activation::Identity, true, false).unwrap();
        let w = mlp.init_params(
            crate::config::schema::Init::Lecun,
            1.0,
            &mut stream_rng(seed, "t"),
        );
        (mlp, w)
    }

    const XDISTS: [XDist; 5] = [
        XDist::GaussIso,
        XDist::GaussAniso,
        XDist::Mixture,
        XDist::LowdimManifold,
        XDist::HeavyTail,
    ];
    const NOISES: [NoiseModel; 4] = [
        NoiseModel::Gauss,
        NoiseModel::Hetero,
        NoiseModel::StudentT,
        NoiseModel::Outliers,
    ];

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let (t, tw) = linear_teacher(5, 0);
        for xd in XDISTS {
            for nm in NOISES {
                let c = cfg(50, xd, nm);
                let a = generate(&c, 7, &t, &tw).unwrap();
                assert_eq!(a, generate(&c, 7, &t, &tw).unwrap(), "{xd:?}/{nm:?}");
                assert_ne!(a, generate(&c, 8, &t, &tw).unwrap(), "{xd:?}/{nm:?}");
                assert_eq!(a.x.dim(), (50, 5));
                assert_eq!(a.y.dim(), (50, 1));
                assert!(a.x.iter().chain(a.y.iter()).all(|v| v.is_finite()));
            }
        }
    }

    #[test]
    fn noise_model_does_not_change_inputs() {
        // Separate streams: X depends on the seed and x_dist only.
        let (t, tw) = linear_teacher(4, 1);
        let base = generate(&cfg(40, XDist::Mixture, NoiseModel::Gauss), 3, &t, &tw).unwrap();
        for nm in NOISES {
            assert_eq!(
                generate(&cfg(40, XDist::Mixture, nm), 3, &t, &tw)
                    .unwrap()
                    .x,
                base.x
            );
        }
    }

    #[test]
    fn streams_are_distinct() {
        let mut a = stream_rng(42, streams::DATA_X);
        let mut b = stream_rng(42, streams::DATA_NOISE);
        let mut c = stream_rng(43, streams::DATA_X);
        let (x, y, z): (u64, u64, u64) = (a.random(), b.random(), c.random());
        assert!(x != y && x != z && y != z);
    }

    fn column_variances(x: &Array2<f64>) -> Vec<f64> {
        x.var_axis(Axis(0), 1.0).to_vec()
    }

    #[test]
    fn aniso_variances_span_the_condition_number() {
        let mut c = cfg(40_000, XDist::GaussAniso, NoiseModel::Gauss);
        c.aniso_condition = 100.0;
        let x = sample_inputs(&c, 3, &mut stream_rng(1, "x")).unwrap();
        let v = column_variances(&x);
        // Expected variances 0.1, 1, 10. A sample variance from 40k Gaussian draws has relative
        // standard error √(2/40k) ≈ 0.7%; 4% is more than 5σ.
        for (got, want) in v.iter().zip([0.1, 1.0, 10.0]) {
            assert!((got / want - 1.0).abs() < 0.04, "{v:?}");
        }
    }

    #[test]
    fn mixture_has_the_centre_spread_plus_unit_noise() {
        // Per coordinate: variance = spread²·(centre variance) + 1. With only 4 centres the
        // centre part is itself random, so check the ordering rather than a value: the spread
        // makes the data clearly wider than unit noise, and the within-centre noise is kept.
        let mut c = cfg(20_000, XDist::Mixture, NoiseModel::Gauss);
        c.mixture_components = 50;
        c.mixture_spread = 3.0;
        let x = sample_inputs(&c, 2, &mut stream_rng(2, "x")).unwrap();
        // 50 centres ~ N(0, 9): their sample variance is 9 ± 9·√(2/49) ≈ 9 ± 1.8, so the total
        // 10 ± 1.8 stays within [5, 16] (a 2.7σ-wide window on the low side, > 3σ on the high).
        for v in column_variances(&x) {
            assert!((5.0..16.0).contains(&v), "variance {v}");
        }
    }

    /// Median over 40 points of how far the covariance of the offsets to a point's 8 nearest
    /// neighbours is from rank one: (tr² − ‖C‖²_F)/tr², which is 0 for a curve (rank 1), ½ for a
    /// flat surface (two equal eigenvalues) and ⅔ for isotropic 3-d data.
    fn local_flatness(x: &Array2<f64>) -> f64 {
        let mut scores: Vec<f64> = (0..40)
            .map(|i| {
                let xi = x.row(i);
                let mut by_dist: Vec<(f64, usize)> = (0..x.nrows())
                    .filter(|&j| j != i)
                    .map(|j| ((&x.row(j) - &xi).mapv(|v| v * v).sum(), j))
                    .collect();
                by_dist.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut c = Array2::<f64>::zeros((3, 3));
                for &(_, j) in &by_dist[..8] {
                    let dv = (&x.row(j) - &xi).insert_axis(Axis(1));
                    c += &dv.dot(&dv.t());
                }
                let tr = c.diag().sum();
                (tr * tr - c.mapv(|v| v * v).sum()) / (tr * tr)
            })
            .collect();
        scores.sort_by(f64::total_cmp);
        scores[scores.len() / 2]
    }

    #[test]
    fn manifold_inputs_have_intrinsic_dimension_k() {
        let mut c = cfg(2000, XDist::LowdimManifold, NoiseModel::Gauss);
        c.manifold_dim = 1;
        let curve = local_flatness(&sample_inputs(&c, 3, &mut stream_rng(5, "x")).unwrap());
        c.manifold_dim = 2;
        let surface = local_flatness(&sample_inputs(&c, 3, &mut stream_rng(5, "x")).unwrap());
        c.x_dist = XDist::GaussIso;
        let solid = local_flatness(&sample_inputs(&c, 3, &mut stream_rng(5, "x")).unwrap());
        // Curvature bends a neighbourhood of size ε by ~κε², adding ~κ²ε² ≪ 0.05 to a curve's
        // score at these densities; the bands are wide because neighbourhoods are random.
        assert!(curve < 0.05, "k = 1 score {curve}");
        assert!((0.2..0.6).contains(&surface), "k = 2 score {surface}");
        assert!(solid > surface, "3-d score {solid} vs surface {surface}");
        c.x_dist = XDist::LowdimManifold;
        c.manifold_dim = 4;
        let err = sample_inputs(&c, 3, &mut stream_rng(5, "x")).unwrap_err();
        assert_eq!(
            err,
            DataError::ManifoldDim {
                manifold_dim: 4,
                in_dim: 3
            }
        );
    }

    #[test]
    fn gauss_noise_has_the_configured_scale() {
        let (t, tw) = linear_teacher(3, 4);
        let mut c = cfg(40_000, XDist::GaussIso, NoiseModel::Gauss);
        c.noise_scale = 0.3;
        let d = generate(&c, 9, &t, &tw).unwrap();
        let clean = t.predict(&tw, d.x.view()).unwrap();
        let var = (&d.y - &clean).var(1.0);
        // Relative standard error of a sample variance over 40k draws ≈ 0.7%; 4% bound.
        assert!((var / 0.09 - 1.0).abs() < 0.04, "noise variance {var}");
    }

    #[test]
    fn noiseless_data_is_the_teacher() {
        let (t, tw) = linear_teacher(3, 4);
        let mut c = cfg(100, XDist::HeavyTail, NoiseModel::StudentT);
        c.noise_scale = 0.0;
        let d = generate(&c, 9, &t, &tw).unwrap();
        assert_eq!(d.y, t.predict(&tw, d.x.view()).unwrap());
    }

    #[test]
    fn outliers_inflate_the_noise_variance() {
        let (t, tw) = linear_teacher(3, 4);
        let c = cfg(20_000, XDist::GaussIso, NoiseModel::Outliers);
        let d = generate(&c, 9, &t, &tw).unwrap();
        let var = (&d.y - &t.predict(&tw, d.x.view()).unwrap()).var(1.0);
        // Exactly 5% of rows at 10σ: variance σ²(0.95 + 0.05·100) = 5.95σ². The sample variance
        // of this mixture over 20k rows has relative standard error ≈ 4.6% (its fourth moment is
        // 1503σ⁴); 20% is more than 4σ.
        let want = 5.95 * 0.01;
        assert!((var / want - 1.0).abs() < 0.2, "{var} vs {want}");
    }

    #[test]
    fn hetero_noise_grows_with_the_input_norm() {
        let (t, tw) = linear_teacher(2, 4);
        let c = cfg(40_000, XDist::GaussIso, NoiseModel::Hetero);
        let d = generate(&c, 9, &t, &tw).unwrap();
        let r = &d.y - &t.predict(&tw, d.x.view()).unwrap();
        let (mut near, mut far) = (Vec::new(), Vec::new());
        for (xi, ri) in d.x.rows().into_iter().zip(r.column(0)) {
            let norm = xi.dot(&xi).sqrt();
            if norm < 0.5 {
                near.push(ri * ri);
            } else if norm > 2.5 {
                far.push(ri * ri);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        // Scales (1 + ‖x‖/√2)/2: ≤ 0.68 near, ≥ 1.38 far, so the variance ratio is ≥ 4; the
        // groups have ≥ 1000 rows each, so their mean squares are within ~10%.
        assert!(
            mean(&far) > 2.0 * mean(&near),
            "far {} near {}",
            mean(&far),
            mean(&near)
        );
    }

    #[test]
    fn bad_distribution_parameters_are_errors() {
        let mut c = cfg(10, XDist::HeavyTail, NoiseModel::Gauss);
        c.tail_df = 0.0;
        assert!(matches!(
            sample_inputs(&c, 2, &mut stream_rng(0, "x")),
            Err(DataError::Distribution { key: "tail_df", .. })
        ));
    }
}
