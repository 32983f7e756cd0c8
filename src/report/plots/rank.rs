//! `rank.png`, ArviZ's `plot_rank` (Vehtari et al. 2021): rank every LLC draw among the draws
//! of all chains together, then histogram each chain's ranks. When the chains sample the same
//! distribution every chain's ranks are uniform, so each row of bars is flat around the dashed
//! expectation; a chain stuck high or low piles its bars at one end, a chain that moves slowly
//! shows waves.
//!
//! In: the `[chain, draw]` LLC draws. Out: one PNG with one row of bars per chain. The ranking
//! ([`pooled_ranks`]) and binning ([`rank_counts`], [`rank_bins`]) are pure functions.

use std::path::Path;

use plotters::prelude::*;

use super::{TickedAxis, chart_builder, no_data, style_mesh_with};
use crate::report::PlotError;
use crate::report::style::{SIZE, color, fmt_tick, render};

/// The ranks 1..=N of every finite draw among the finite draws of all chains (N of them), one
/// vector per chain in draw order; tied values share their average rank (scipy's
/// `rankdata(method="average")`, as ArviZ ranks). Non-finite draws get no rank.
pub fn pooled_ranks(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut all: Vec<(f64, usize, usize)> = chains
        .iter()
        .enumerate()
        .flat_map(|(c, chain)| {
            chain
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(move |(t, &v)| (v, c, t))
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut ranks: Vec<Vec<f64>> = chains.iter().map(|c| vec![f64::NAN; c.len()]).collect();
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Positions i..j (0-based) are tied: ranks i+1..=j, average (i + 1 + j) / 2.
        let rank = (i + 1 + j) as f64 / 2.0;
        for &(_, c, t) in &all[i..j] {
            ranks[c][t] = rank;
        }
        i = j;
    }
    ranks
        .into_iter()
        .map(|r| r.into_iter().filter(|v| !v.is_nan()).collect())
        .collect()
}

/// Counts of `ranks` (each in 1..=`total`) in `bins` equal bins over (0, `total`]: bin b holds
/// the ranks r with b·total/bins < r ≤ (b+1)·total/bins.
pub fn rank_counts(ranks: &[f64], total: usize, bins: usize) -> Vec<usize> {
    let mut counts = vec![0; bins.max(1)];
    if total == 0 {
        return counts;
    }
    let last = counts.len() - 1;
    for &r in ranks {
        let b = ((r / total as f64) * counts.len() as f64).ceil() as usize;
        counts[b.saturating_sub(1).min(last)] += 1;
    }
    counts
}

/// ArviZ's default number of bins: Sturges' rule doubled, ⌈2·log₂(draws per chain)⌉ + 1.
pub fn rank_bins(draws_per_chain: usize) -> usize {
    if draws_per_chain < 2 {
        return 1;
    }
    (2.0 * (draws_per_chain as f64).log2()).ceil() as usize + 1
}

/// Height of the canvas: rows stay about 90 px high however many chains there are.
fn canvas_height(chains: usize) -> u32 {
    SIZE.1.max(200 + 90 * chains as u32)
}

/// `rank.png`: per chain (one row each, chain 0 at the bottom) the histogram of its ranks among
/// all draws, with the count a uniform distribution expects dashed.
pub fn plot_rank(path: &Path, label: &str, llc: &[Vec<f64>]) -> Result<(), PlotError> {
    let ranks = pooled_ranks(llc);
    let total: usize = ranks.iter().map(Vec::len).sum();
    if total == 0 || ranks.iter().any(Vec::is_empty) {
        return Err(no_data(
            path,
            "every chain needs finite LLC draws to be ranked",
        ));
    }
    let per_chain = total / ranks.len();
    let bins = rank_bins(per_chain);
    let counts: Vec<Vec<usize>> = ranks.iter().map(|r| rank_counts(r, total, bins)).collect();
    let tallest = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    // The tallest bar fills 85 % of its row, so rows never touch.
    let scale = 0.85 / tallest;
    let width = total as f64 / bins as f64;
    let n_chains = llc.len();
    let title = format!("LLC rank plot: {label}");
    let subtitle = format!(
        "each chain's ranks among all {total} draws ({bins} bins); dashed: uniform, what \
         agreeing chains give"
    );
    let size = (SIZE.0, canvas_height(n_chains));
    render(path, size, &title, &subtitle, |area| {
        let y_range = TickedAxis {
            range: 0.0..n_chains as f64,
            // Each row's label halfway up its bars.
            ticks: (0..n_chains).map(|c| c as f64 + 0.4).collect(),
        };
        let mut chart = chart_builder(area).build_cartesian_2d(0.0..total as f64, y_range)?;
        let chain_label = |y: &f64| format!("chain {}", y.floor() as i64);
        style_mesh_with(&mut chart, "rank (all chains)", "", &fmt_tick, &chain_label)?;
        for (c, row) in counts.iter().enumerate() {
            let base = c as f64;
            let colour = color(c);
            chart.draw_series(row.iter().enumerate().map(|(b, &n)| {
                let x0 = b as f64 * width;
                Rectangle::new(
                    [(x0, base), (x0 + width, base + n as f64 * scale)],
                    colour.mix(0.7).filled(),
                )
            }))?;
            let expected = base + ranks[c].len() as f64 / bins as f64 * scale;
            chart.draw_series(DashedLineSeries::new(
                [(0.0, expected), (total as f64, expected)],
                10,
                6,
                BLACK.stroke_width(2),
            ))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plots::RANK_PNG;
    use crate::report::testutil::{TempDir, assert_png, chains};

    #[test]
    fn ranks_pool_all_chains_and_average_ties() {
        let ranks = pooled_ranks(&[vec![3.0, 1.0, f64::NAN], vec![2.0, 3.0, 10.0]]);
        // Sorted: 1 (rank 1), 2 (2), 3 and 3 (tied at 3 and 4: 3.5 each), 10 (5).
        assert_eq!(ranks, vec![vec![3.5, 1.0], vec![2.0, 3.5, 5.0]]);
    }

    #[test]
    fn ranks_are_a_permutation_without_ties() {
        let llc = chains(3, 40);
        let mut all: Vec<f64> = pooled_ranks(&llc).into_iter().flatten().collect();
        all.sort_by(f64::total_cmp);
        let want: Vec<f64> = (1..=120).map(f64::from).collect();
        assert_eq!(all, want);
    }

    #[test]
    fn counts_split_ranks_into_equal_bins() {
        // 12 ranks over 3 bins: (0, 4], (4, 8], (8, 12].
        let ranks: Vec<f64> = (1..=12).map(f64::from).collect();
        assert_eq!(rank_counts(&ranks, 12, 3), vec![4, 4, 4]);
        assert_eq!(rank_counts(&[4.0, 4.5, 12.0], 12, 3), vec![1, 1, 1]);
        assert_eq!(rank_counts(&[1.0, 2.0], 0, 3), vec![0, 0, 0]);
    }

    #[test]
    fn bins_follow_doubled_sturges() {
        // ⌈2·log₂ 1000⌉ + 1 = ⌈19.93⌉ + 1 = 21; 1024 draws: 2·10 + 1.
        assert_eq!(rank_bins(1000), 21);
        assert_eq!(rank_bins(1024), 21);
        assert_eq!(rank_bins(1025), 22);
        assert_eq!(rank_bins(1), 1);
    }

    #[test]
    fn rank_plot_is_a_real_png() {
        let tmp = TempDir::new("plot-rank");
        let path = tmp.path().join(RANK_PNG);
        plot_rank(&path, "run_hmc_0123abcd", &chains(4, 1000)).unwrap();
        assert_png(&path, (SIZE.0, canvas_height(4)));
        plot_rank(&path, "run_hmc_0123abcd", &chains(8, 300)).unwrap();
        assert_png(&path, (SIZE.0, canvas_height(8)));
    }
}
