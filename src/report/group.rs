//! `results --group-by`: per-group summary statistics computed the way pandas computes them,
//! so the numbers equal the seed's `df.groupby([...]).agg(...)`.
//!
//! Data enters as result rows and the grouping columns; it leaves as [`Group`]s sorted by key
//! (numbers by value, text by bytes, missing keys last) and as a [`Table`].
//!
//! pandas semantics kept on purpose: missing values (NaN) are skipped by `mean` and `std`;
//! `std` is the sample standard deviation (ddof = 1) and is missing for fewer than two values;
//! a mean over no values is missing. One difference: pandas drops rows whose *key* is NaN; we
//! keep them as their own group, because a report must not hide runs.

use super::row::{Key, RunRow};
use super::table::{Table, Value, compare};

/// Summary of the runs that share one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub key: Vec<Value>,
    pub n_runs: usize,
    pub llc_mean_mean: Option<f64>,
    pub llc_mean_std: Option<f64>,
    pub ess_mean: Option<f64>,
    pub walltime_sec_mean: Option<f64>,
}

/// Groups `rows` by the values of `columns`.
pub fn group_by(rows: &[RunRow], columns: &[Key]) -> Vec<Group> {
    let mut keyed: Vec<(Vec<Value>, &RunRow)> = rows
        .iter()
        .map(|r| (columns.iter().map(|c| c.value(r)).collect(), r))
        .collect();
    keyed.sort_by(|a, b| compare_keys(&a.0, &b.0));

    let mut groups = Vec::new();
    let mut start = 0;
    while start < keyed.len() {
        let key = &keyed[start].0;
        let len = keyed[start..].iter().take_while(|(k, _)| k == key).count();
        let members: Vec<&RunRow> = keyed[start..start + len].iter().map(|(_, r)| *r).collect();
        groups.push(summarize(key.clone(), &members));
        start += len;
    }
    groups
}

fn compare_keys(a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| compare(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

fn summarize(key: Vec<Value>, members: &[&RunRow]) -> Group {
    let llc: Vec<Option<f64>> = members.iter().map(|r| r.llc_mean).collect();
    Group {
        key,
        n_runs: members.len(),
        llc_mean_mean: mean(&llc),
        llc_mean_std: std_ddof1(&llc),
        ess_mean: mean(&members.iter().map(|r| r.ess).collect::<Vec<_>>()),
        walltime_sec_mean: mean(&members.iter().map(|r| r.walltime_sec).collect::<Vec<_>>()),
    }
}

fn present(xs: &[Option<f64>]) -> Vec<f64> {
    xs.iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect()
}

/// Mean of the present values (pandas `mean(skipna=True)`).
pub fn mean(xs: &[Option<f64>]) -> Option<f64> {
    let xs = present(xs);
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation of the present values (pandas `std()`, ddof = 1), two-pass.
pub fn std_ddof1(xs: &[Option<f64>]) -> Option<f64> {
    let xs = present(xs);
    if xs.len() < 2 {
        return None;
    }
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// The groups as a table: key columns, then `n_runs`, `llc_mean_mean`, `llc_mean_std`,
/// `ess_mean`, `walltime_sec_mean` (pandas' MultiIndex columns, flattened with `_`).
pub fn group_table(columns: &[Key], groups: &[Group]) -> Table {
    let mut header: Vec<String> = columns.iter().map(|c| c.name().to_string()).collect();
    header.extend(
        [
            "n_runs",
            "llc_mean_mean",
            "llc_mean_std",
            "ess_mean",
            "walltime_sec_mean",
        ]
        .map(String::from),
    );
    let rows = groups
        .iter()
        .map(|g| {
            let mut row = g.key.clone();
            row.push(Value::Int(g.n_runs as u64));
            row.extend(
                [
                    g.llc_mean_mean,
                    g.llc_mean_std,
                    g.ess_mean,
                    g.walltime_sec_mean,
                ]
                .map(Value::float),
            );
            row
        })
        .collect();
    Table { header, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_matches_the_textbook_sample_formula() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squares 32, sample variance 32/7.
        let xs: Vec<Option<f64>> = [2., 4., 4., 4., 5., 5., 7., 9.].map(Some).to_vec();
        assert_eq!(mean(&xs), Some(5.0));
        let s = std_ddof1(&xs).unwrap();
        assert!((s - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn missing_values_are_skipped_like_pandas() {
        let xs = [Some(1.0), None, Some(3.0), Some(f64::NAN)];
        assert_eq!(mean(&xs), Some(2.0));
        assert_eq!(std_ddof1(&xs), Some(2f64.sqrt()));
        assert_eq!(std_ddof1(&[Some(1.0), None]), None);
        assert_eq!(mean(&[None]), None);
    }
}
