//! Full-batch loss-gradient speed of the MLP, the hot loop of every sampler.
//!
//! Run with `cargo bench --bench gradient` (optionally followed by `-- CASE…` to run only the named cases).
//! Prints ms per gradient (median and best of 15 timings) and GFLOP/s at the best timing, counting ≈ 6·n·p flops per
//! gradient (2·n·p for the forward products, 4·n·p for the backward ones), for:
//!
//! - `base`: in_dim 64, widths [71, 71], out_dim 1, relu, p = 9,799, n = 20,000 (f64 and f32);
//!   for scale, JAX on the same 2 cores takes 26 ms (f64) / 12 ms (f32);
//! - `small`: in_dim 3, widths [6, 6], out_dim 1, p = 73, n = 1,000;
//! - `base` with tanh, a 1,000-row minibatch, and the loss alone,
//! - `dln`: a deep linear network 4 → [3, 3, 3] → 1, p = 40, n = 10,000, whose full batch is
//!   evaluated on 8 moment-matched rows, and `dln-all-rows`, the same on all 10,000 rows,
//! - the sizes of issue 13: `small8` (4 → [8, 8] → 1, relu, p = 121, n = 1,000) and
//!   `small8-tanh` (the same with tanh, the peer benchmark's small model), `dln432`
//!   (4 → [3] → 2, identity, no bias, p = 18, n = 10,000, moment-matched) and
//!   `dln432-all-rows`, and `base62` (32 → [62, 62, 62] → 1, relu, p = 9,921, n = 20,000),
//!
//! each in a rayon pool of 1 thread and of all cores. `BENCH_KERNELS=gemm` or `=narrow` runs
//! every layer on that kernel instead of choosing by width (`nn::KernelChoice`); `BENCH_PRECISION=f64`
//! or `=f32` times that precision only (as a profiler's only work). `cpu ms` is the process's CPU time per
//! evaluation, all threads together: on a busy machine it stays near the true cost while wall
//! times grow.
//!
//! Reference figures (2-core AMD EPYC Zen 5 VM with AVX-512, quiet machine, best of 15), full
//! batch on 2 threads: base 6.6 ms f64 / 3.9 ms f32 (≈ 177 / 304 GFLOP/s), 13.5 / 7.3 ms on one
//! thread; base-tanh 8.2 / 5.5 ms; small 0.05 ms. ndarray's default matrixmultiply backend
//! took 11.7 / 6.2 ms on 2 threads (23.1 / 12.1 on one) for base.
//!
//! Narrow-layer kernels (`nn/narrow.rs`), same machine, load average 1–1.5, best ms per
//! gradient on one thread, f64 / f32, before → after: small8 0.0450 / 0.0488 → 0.0323 / 0.0178;
//! small 0.0521 / 0.0528 → 0.0180 / 0.0137; dln432 (moments) 0.0011 → 0.0003 in both;
//! dln432-all-rows 0.257 / 0.247 → 0.037 / 0.050; base62 14.5 / 7.72 → 14.8 / 7.85 (gemm both
//! times; 7.54 / 4.10 → 7.61 / 3.85 on 2 threads); base 15.2 / 8.88 → 13.2 / 7.11.

use std::hint::black_box;
use std::time::{Duration, Instant};

use lambda_hat::config::schema::{Activation, Init};
use lambda_hat::nn::{KernelChoice, Mlp, MlpLoss};
use lambda_hat::numeric::Real;
use lambda_hat::posterior::{LossModel, Rows};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

struct Case {
    name: &'static str,
    in_dim: usize,
    hidden: &'static [usize],
    out_dim: usize,
    bias: bool,
    activation: Activation,
    n: usize,
    /// Rows per evaluation: `None` for the full batch, or a minibatch size.
    batch: Option<usize>,
    grad: bool,
    /// Whether an identity network may evaluate its full batch on moment-matched rows
    /// (`nn::moments`); `false` times the same loss on all n rows.
    moments: bool,
}

const CASES: [Case; 13] = [
    Case {
        name: "base",
        in_dim: 64,
        out_dim: 1,
        bias: true,
        hidden: &[71, 71],
        activation: Activation::Relu,
        n: 20_000,
        batch: None,
        grad: true,
        moments: true,
    },
    Case {
        name: "small",
        in_dim: 3,
        out_dim: 1,
        bias: true,
        hidden: &[6, 6],
        activation: Activation::Relu,
        n: 1_000,
        batch: None,
        grad: true,
        moments: true,
    },
    Case {
        name: "base-tanh",
        in_dim: 64,
        out_dim: 1,
        bias: true,
        hidden: &[71, 71],
        activation: Activation::Tanh,
        n: 20_000,
        batch: None,
        grad: true,
        moments: true,
    },
    Case {
        name: "base-minibatch1000",
        in_dim: 64,
        out_dim: 1,
        bias: true,
        hidden: &[71, 71],
        activation: Activation::Relu,
        n: 20_000,
        batch: Some(1000),
        grad: true,
        moments: true,
    },
    Case {
        name: "base-loss-only",
        in_dim: 64,
        out_dim: 1,
        bias: true,
        hidden: &[71, 71],
        activation: Activation::Relu,
        n: 20_000,
        batch: None,
        grad: false,
        moments: true,
    },
    Case {
        name: "dln",
        in_dim: 4,
        out_dim: 1,
        bias: true,
        hidden: &[3, 3, 3],
        activation: Activation::Identity,
        n: 10_000,
        batch: None,
        grad: true,
        moments: true,
    },
    Case {
        name: "dln-all-rows",
        in_dim: 4,
        out_dim: 1,
        bias: true,
        hidden: &[3, 3, 3],
        activation: Activation::Identity,
        n: 10_000,
        batch: None,
        grad: true,
        moments: false,
    },
    // The sizes of issue 13 ("kernels that fit skinny shapes").
    Case {
        name: "small8",
        in_dim: 4,
        out_dim: 1,
        bias: true,
        hidden: &[8, 8],
        activation: Activation::Relu,
        n: 1_000,
        batch: None,
        grad: true,
        moments: true,
    },
    // The same with tanh: the small model of `scripts/bench-peers.sh` and of the demo.
    Case {
        name: "small8-tanh",
        in_dim: 4,
        out_dim: 1,
        bias: true,
        hidden: &[8, 8],
        activation: Activation::Tanh,
        n: 1_000,
        batch: None,
        grad: true,
        moments: true,
    },
    Case {
        name: "dln432",
        in_dim: 4,
        out_dim: 2,
        bias: false,
        hidden: &[3],
        activation: Activation::Identity,
        n: 10_000,
        batch: None,
        grad: true,
        moments: true,
    },
    Case {
        name: "dln432-all-rows",
        in_dim: 4,
        out_dim: 2,
        bias: false,
        hidden: &[3],
        activation: Activation::Identity,
        n: 10_000,
        batch: None,
        grad: true,
        moments: false,
    },
    // Between the narrow kernels' widths and base's: layers of 24 (narrow in f64, gemm's in f32).
    Case {
        name: "mid24-tanh",
        in_dim: 6,
        out_dim: 1,
        bias: true,
        hidden: &[24, 24],
        activation: Activation::Tanh,
        n: 2_000,
        batch: None,
        grad: true,
        moments: true,
    },
    Case {
        name: "base62",
        in_dim: 32,
        out_dim: 1,
        bias: true,
        hidden: &[62, 62, 62],
        activation: Activation::Relu,
        n: 20_000,
        batch: None,
        grad: true,
        moments: true,
    },
];

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // BENCH_KERNELS=gemm|narrow times every layer on one kernel (default: by size, as users get).
    let kernels = match std::env::var("BENCH_KERNELS").as_deref() {
        Ok("gemm") => KernelChoice::AllGemm,
        Ok("narrow") => KernelChoice::AllNarrow,
        _ => KernelChoice::BySize,
    };
    // BENCH_PRECISION=f64|f32 times one precision only (default: both), e.g. under a profiler.
    let precision = std::env::var("BENCH_PRECISION").unwrap_or_default();
    let (f64s, f32s) = (precision != "f32", precision != "f64");
    println!("kernels: {kernels:?}");
    // The machine may be shared: print its load so a slow figure can be told from a busy box.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average before: {}", load.trim());
    }
    println!(
        "{:<20} {:>4} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "case", "prec", "p", "threads", "median ms", "best ms", "GFLOP/s", "cpu ms"
    );
    for case in &CASES {
        if !filter.is_empty() && !filter.iter().any(|f| case.name == f.as_str()) {
            continue;
        }
        for threads in [1, cores] {
            if f64s {
                bench::<f64>(case, threads, kernels);
            }
            if f32s {
                bench::<f32>(case, threads, kernels);
            }
        }
    }
}

fn bench<F: Real>(case: &Case, threads: usize, kernels: KernelChoice) {
    let mlp = Mlp::from_parts(
        case.in_dim,
        case.hidden,
        case.out_dim,
        case.activation,
        case.bias,
        false,
    )
    .expect("valid architecture")
    .with_kernels(kernels);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let x = Array2::from_shape_fn((case.n, case.in_dim), |_| F::of(rng.sample(StandardNormal)));
    let y = Array2::from_shape_fn((case.n, case.out_dim), |_| {
        F::of(rng.sample(StandardNormal))
    });
    let w: Vec<F> = mlp.init_params(Init::He, 1.0, &mut rng);
    let p = mlp.n_params();
    let loss = MlpLoss::new(mlp, x, y).expect("consistent shapes");
    let loss = if case.moments {
        loss
    } else {
        loss.without_moments()
    };
    let idx: Vec<usize> = (0..case.batch.unwrap_or(0))
        .map(|_| rng.random_range(0..case.n))
        .collect();
    let rows = if case.batch.is_some() {
        Rows::Subset(&idx)
    } else {
        Rows::All
    };
    let n_rows = case.batch.unwrap_or(case.n);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let (median, best, cpu) = pool.install(|| {
        let mut ws = loss.workspace(n_rows);
        let mut grad = vec![F::zero(); p];
        let mut eval = || {
            if case.grad {
                black_box(loss.loss_grad(black_box(&w), rows, &mut grad, &mut ws));
            } else {
                black_box(loss.loss(black_box(&w), rows, &mut ws));
            }
        };
        // Calibrate to ~0.1 s per sample and take 15 samples. The machine is shared, so both the
        // median and the best sample are reported: the best is the least disturbed one.
        eval();
        let t0 = Instant::now();
        eval();
        let once = t0.elapsed().max(Duration::from_micros(1));
        let reps = (0.1 / once.as_secs_f64()).ceil().max(1.0) as u32;
        let cpu0 = process_cpu_seconds();
        let mut samples: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..reps {
                    eval();
                }
                t.elapsed().as_secs_f64() / f64::from(reps)
            })
            .collect();
        let cpu = (process_cpu_seconds() - cpu0) / (15.0 * f64::from(reps));
        samples.sort_by(f64::total_cmp);
        (samples[samples.len() / 2], samples[0], cpu)
    });
    let flops = if case.grad { 6.0 } else { 2.0 } * n_rows as f64 * p as f64;
    println!(
        "{:<20} {:>4} {:>6} {:>7} {:>9.4} {:>9.4} {:>9.1} {:>9.4}",
        case.name,
        F::NAME,
        p,
        threads,
        median * 1e3,
        best * 1e3,
        flops / best / 1e9,
        cpu * 1e3
    );
}

/// CPU time used so far by this process, all threads (also exited ones), from Linux's
/// /proc/self/stat (utime + stime, in USER_HZ = 100 ticks per second); NaN elsewhere. Unlike
/// wall time it does not grow when other processes take the cores, so it tells kernel
/// efficiency apart from machine load (but it includes the time rayon's idle workers spin).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}
