//! The data set: [`DataConfig`] (size, input distribution, noise).

use serde::{Deserialize, Serialize};

use crate::invalid::{Invalid, count, fraction, invalid, positive};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum XDist {
    #[default]
    GaussIso,
    GaussAniso,
    Mixture,
    LowdimManifold,
    HeavyTail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NoiseModel {
    #[default]
    Gauss,
    Hetero,
    StudentT,
    Outliers,
}

fn d_noise_scale() -> f64 {
    0.1
}
fn d_aniso_condition() -> f64 {
    10.0
}
fn d_mixture_components() -> usize {
    4
}
fn d_mixture_spread() -> f64 {
    2.0
}
fn d_manifold_dim() -> usize {
    2
}
fn d_tail_df() -> f64 {
    3.0
}
fn d_outlier_frac() -> f64 {
    0.05
}
fn d_outlier_scale() -> f64 {
    10.0
}

/// Inputs x ~ `x_dist`, outputs y = teacher(x) + noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub n_data: usize,
    #[serde(default)]
    pub x_dist: XDist,
    #[serde(default)]
    pub noise: NoiseModel,
    #[serde(default = "d_noise_scale")]
    pub noise_scale: f64,
    /// gauss_aniso: ratio of the largest to the smallest input variance.
    #[serde(default = "d_aniso_condition")]
    pub aniso_condition: f64,
    /// mixture: number of Gaussian components and the spread of their centres.
    #[serde(default = "d_mixture_components")]
    pub mixture_components: usize,
    #[serde(default = "d_mixture_spread")]
    pub mixture_spread: f64,
    /// lowdim_manifold: intrinsic dimension of the input manifold.
    #[serde(default = "d_manifold_dim")]
    pub manifold_dim: usize,
    /// heavy_tail inputs and student_t noise: degrees of freedom.
    #[serde(default = "d_tail_df")]
    pub tail_df: f64,
    /// outliers noise: fraction of points and the scale of their noise.
    #[serde(default = "d_outlier_frac")]
    pub outlier_frac: f64,
    #[serde(default = "d_outlier_scale")]
    pub outlier_scale: f64,
}

impl DataConfig {
    /// Gaussian inputs and noise with every other key at its default.
    pub fn gauss_iso(n_data: usize, noise_scale: f64) -> Self {
        DataConfig {
            n_data,
            x_dist: XDist::GaussIso,
            noise: NoiseModel::Gauss,
            noise_scale,
            aniso_condition: d_aniso_condition(),
            mixture_components: d_mixture_components(),
            mixture_spread: d_mixture_spread(),
            manifold_dim: d_manifold_dim(),
            tail_df: d_tail_df(),
            outlier_frac: d_outlier_frac(),
            outlier_scale: d_outlier_scale(),
        }
    }

    pub fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        count(out, &format!("{prefix}.n_data"), self.n_data);
        // The default inverse temperature β = β₀/ln n and training's default tolerance
        // 0.1·ln(n)/n both need ln n > 0; one row is no data set to localize a posterior on.
        if self.n_data == 1 {
            out.push(invalid(
                &format!("{prefix}.n_data"),
                "must be at least 2: the posterior's inverse temperature is beta0 / ln(n_data) \
                 and training's gradient tolerance 0.1 ln(n_data) / n_data, and ln 1 = 0, got 1"
                    .to_string(),
            ));
        }
        if !(self.noise_scale.is_finite() && self.noise_scale >= 0.0) {
            out.push(invalid(
                &format!("{prefix}.noise_scale"),
                format!("must be >= 0, got {}", self.noise_scale),
            ));
        }
        positive(
            out,
            &format!("{prefix}.aniso_condition"),
            self.aniso_condition,
        );
        count(
            out,
            &format!("{prefix}.mixture_components"),
            self.mixture_components,
        );
        // Each row draws one centre, so more centres than rows add nothing but memory (the
        // centres are not counted in a job's memory estimate; rows are).
        if self.x_dist == XDist::Mixture && self.mixture_components > self.n_data {
            out.push(invalid(
                &format!("{prefix}.mixture_components"),
                format!(
                    "must be at most n_data ({}): each row draws one centre, got {}",
                    self.n_data, self.mixture_components
                ),
            ));
        }
        positive(
            out,
            &format!("{prefix}.mixture_spread"),
            self.mixture_spread,
        );
        count(out, &format!("{prefix}.manifold_dim"), self.manifold_dim);
        positive(out, &format!("{prefix}.tail_df"), self.tail_df);
        fraction(
            out,
            &format!("{prefix}.outlier_frac"),
            self.outlier_frac,
            false,
        );
        positive(out, &format!("{prefix}.outlier_scale"), self.outlier_scale);
    }
}
