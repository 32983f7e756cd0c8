//! How much memory a job will need, estimated from its resolved config before anything runs.
//!
//! In: a target's config (and a sampler's, for a run). Out: a [`MemoryEstimate`] in bytes with
//! its largest parts named, so a refusal can say what to shrink. Pure arithmetic in f64, so an
//! absurd config (`draws: 1e12`, `n_data: 1e10`) gives a huge number instead of an overflow.
//!
//! What it counts, each an upper bound of what the worker holds at once:
//! - the data set, X (n × in) and y (n × out), at the sweep's precision, twice (generated, and
//!   its copy in the `.npz` being written);
//! - the parameter-sized vectors: [`PARAM_VECTORS`] per chain for a sampler (position,
//!   momentum, gradients, mass, proposal, NUTS's tree ends), Adam's moments and L-BFGS's
//!   [`LBFGS_PAIRS`] pairs for training, all f64;
//! - the activations of one chunk of rows per chain (`CHUNK_ROWS` × Σ widths, forward and
//!   backward);
//! - the recorded trace: per chain and recorded draw the LLC, the loss and up to
//!   [`TRACE_STATS`] statistics, f64, twice (in memory and in the `.npz` being written), plus
//!   the warmup's per-step statistics, and what each sampler says it keeps besides
//!   (`Sampler::footprint`: NUTS's tree, MCLMC's stage-3 ESS buffer, SGLD's row permutation);
//! - [`BASE_BYTES`] for the binary, the thread stacks and the allocator.
//!
//! Measured against it: the demo's MCLMC run (p = 79, n = 2,000, 4 chains × 4,000 draws)
//! peaked at 15 MB resident; the estimate is 36 MB, 32 of them [`BASE_BYTES`].

use crate::config::experiments::param_count;
use crate::config::schema::{SamplerConfig, TargetConfig};
use crate::nn::mlp::CHUNK_ROWS;
use crate::numeric::Precision;

/// Parameter-sized f64 vectors a chain holds (see the module doc).
pub const PARAM_VECTORS: f64 = 16.0;
/// L-BFGS's stored (s, y) pairs in training.
pub const LBFGS_PAIRS: f64 = 20.0;
/// Per-draw statistics besides the LLC and the loss (HMC's acceptance, energy, step size...).
pub const TRACE_STATS: f64 = 8.0;
/// The process itself: binary, thread stacks, allocator slack.
pub const BASE_BYTES: f64 = 32.0 * 1024.0 * 1024.0;

/// A job's estimated peak memory and its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    pub bytes: f64,
    /// (what, bytes), largest first.
    pub parts: Vec<(&'static str, f64)>,
}

impl MemoryEstimate {
    fn from_parts(mut parts: Vec<(&'static str, f64)>) -> Self {
        parts.retain(|(_, b)| *b > 0.0);
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        MemoryEstimate {
            bytes: BASE_BYTES + parts.iter().map(|(_, b)| b).sum::<f64>(),
            parts,
        }
    }

    pub fn megabytes(&self) -> f64 {
        self.bytes / (1024.0 * 1024.0)
    }

    /// "the data set 7.5 GB, the trace 1.2 GB": the two largest parts, for messages.
    pub fn largest_parts(&self) -> String {
        self.parts
            .iter()
            .take(2)
            .map(|(what, b)| format!("{what} {}", human_bytes(*b)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// "512 MB", "7.5 GB", "8.0 TB".
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut x = b;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit >= 3 {
        format!("{x:.1} {}", UNITS[unit])
    } else {
        format!("{x:.0} {}", UNITS[unit])
    }
}

fn precision_bytes(p: Precision) -> f64 {
    match p {
        Precision::F32 => 4.0,
        Precision::F64 => 8.0,
    }
}

/// (n, parameters, Σ widths, bytes per number) of a target.
fn sizes(t: &TargetConfig) -> (f64, f64, f64, f64) {
    let m = &t.model;
    let widths = m.hidden_widths();
    let p = param_count(m.in_dim, m.out_dim, widths, m.bias) as f64;
    let width_sum = widths.iter().map(|&w| w as f64).sum::<f64>() + m.out_dim as f64;
    (
        t.data.n_data as f64,
        p,
        width_sum,
        precision_bytes(t.precision),
    )
}

fn data_bytes(t: &TargetConfig) -> f64 {
    let (n, _, _, b) = sizes(t);
    2.0 * n * (t.model.in_dim + t.model.out_dim) as f64 * b
}

/// `build_target`: data, training state and the loss history.
pub fn target_job(t: &TargetConfig) -> MemoryEstimate {
    let (_, p, width_sum, b) = sizes(t);
    let chunk = 4.0 * CHUNK_ROWS as f64 * width_sum * b;
    let training = (PARAM_VECTORS + 2.0 * LBFGS_PAIRS) * p * 8.0;
    let history = 2.0 * t.training.steps as f64 * 8.0;
    MemoryEstimate::from_parts(vec![
        ("the data set", data_bytes(t)),
        ("the training state", training + chunk),
        ("the loss history", history),
    ])
}

/// `run_sampler`: data, every chain's vectors and workspace, the recorded trace.
pub fn run_job(t: &TargetConfig, s: &SamplerConfig) -> MemoryEstimate {
    let (_, p, width_sum, b) = sizes(t);
    let chains = s.chains() as f64;
    let per_chain = PARAM_VECTORS * p * 8.0 + 4.0 * CHUNK_ROWS as f64 * width_sum * b;
    // What each sampler keeps besides its vectors is its own to say (`Sampler::footprint`).
    let f = s.footprint(p, t.data.n_data as f64);
    let (draws, warmup_steps, extra) = (f.draws, f.warmup_steps, f.extra_bytes);
    let trace = 2.0 * chains * draws * (2.0 + TRACE_STATS) * 8.0;
    let warmup = chains * warmup_steps * 2.0 * 8.0;
    MemoryEstimate::from_parts(vec![
        ("the data set", data_bytes(t)),
        ("the chains' state", chains * (per_chain + extra)),
        ("the trace", trace + warmup),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{HmcConfig, MclmcConfig};

    fn target(n: usize, widths: Vec<usize>) -> TargetConfig {
        let mut t: TargetConfig =
            crate::validate::Case::TrainedDln432.target_config(Precision::F64);
        t.data.n_data = n;
        t.model.depth = widths.len();
        t.model.widths = Some(widths);
        t
    }

    fn hmc(draws: usize) -> SamplerConfig {
        let mut h: HmcConfig =
            serde_yaml::from_str(include_str!("../../config/sampler/hmc.yaml")).unwrap();
        h.draws = draws;
        SamplerConfig::Hmc(h)
    }

    #[test]
    fn the_data_set_is_counted_exactly() {
        // [4, 3, 2] at n = 10,000 in f64: X and y are 10,000 × (4 + 2) × 8 bytes, counted twice.
        let t = target(10_000, vec![3]);
        let e = target_job(&t);
        let data = e
            .parts
            .iter()
            .find(|(w, _)| *w == "the data set")
            .unwrap()
            .1;
        assert_eq!(data, 2.0 * 10_000.0 * 6.0 * 8.0);
    }

    #[test]
    fn absurd_configs_give_absurd_estimates_and_ordinary_ones_small_ones() {
        let small = run_job(&target(5_000, vec![6, 6]), &hmc(2_000));
        assert!(small.megabytes() < 100.0, "{small:?}");
        // draws: 1e12 → a trace of 4 × 1e12 × 10 f64s, twice: 640 TB.
        let huge_trace = run_job(&target(5_000, vec![6, 6]), &hmc(1_000_000_000_000));
        assert!(huge_trace.bytes > 1e14, "{huge_trace:?}");
        assert_eq!(huge_trace.parts[0].0, "the trace");
        // n_data: 1e10 → 1e10 × 6 × 8 × 2 bytes of data.
        let huge_data = target_job(&target(10_000_000_000, vec![3]));
        assert_eq!(huge_data.parts[0].0, "the data set");
        assert!(huge_data.bytes > 9e11);
        // widths [100000, 100000]: 1e10 parameters, 16 vectors of them per chain.
        let wide = run_job(&target(5_000, vec![100_000, 100_000]), &hmc(10));
        assert_eq!(wide.parts[0].0, "the chains' state");
        assert!(wide.bytes > 4.0 * 16.0 * 1e10 * 8.0);
    }

    #[test]
    fn mclmc_counts_its_tuning_buffer() {
        let m: MclmcConfig =
            serde_yaml::from_str(include_str!("../../config/sampler/mclmc.yaml")).unwrap();
        let t = target(5_000, vec![100, 100]);
        let e = run_job(&t, &SamplerConfig::Mclmc(m.clone()));
        let fewer = run_job(
            &t,
            &SamplerConfig::Mclmc(MclmcConfig {
                num_tuning_steps: 0,
                ..m
            }),
        );
        // Stage 3: 2,000 steps × 1,024 coordinates × 8 bytes per chain.
        let buffer = 4.0 * 2_000.0 * 1_024.0 * 8.0;
        assert!(
            e.bytes - fewer.bytes >= buffer,
            "{} vs {}",
            e.bytes,
            fewer.bytes
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512.0 * 1024.0 * 1024.0), "512 MB");
        assert_eq!(human_bytes(7.5 * 1024.0_f64.powi(3)), "7.5 GB");
        assert_eq!(human_bytes(8.0 * 1024.0_f64.powi(4)), "8.0 TB");
    }
}
