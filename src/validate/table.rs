//! The validation report: what was checked and how it went, as a text table or as JSON.
//!
//! In: the built cases' facts ([`CaseInfo`]), the samplers used ([`SamplerInfo`]) and the
//! checks' [`Row`]s, gathered in a [`Report`]. Out: a string (text) or a JSON value; printing
//! is the caller's. Pure.

use serde::Serialize;

use super::check::{Row, percent};
use super::{BuiltCase, Case};
use crate::config::schema::SamplerConfig;
use crate::numeric::Real;

/// Facts about one case, printed above the table so a reader can judge the setup.
#[derive(Debug, Clone, Serialize)]
pub struct CaseInfo {
    pub case: &'static str,
    pub description: &'static str,
    pub n: usize,
    pub params: usize,
    pub n_beta: f64,
    pub gamma: f64,
    pub truth: f64,
    pub l0: f64,
    pub l_min: f64,
    pub noise_floor: f64,
}

impl CaseInfo {
    pub fn of<F: Real>(b: &BuiltCase<F>) -> Self {
        use crate::posterior::LossModel;
        CaseInfo {
            case: b.case.name(),
            description: b.case.describe(),
            n: b.loss.n_data(),
            params: b.loss.dim(),
            n_beta: b.n_beta,
            gamma: b.posterior.gamma,
            truth: b.truth,
            l0: b.l0,
            l_min: b.l_min,
            noise_floor: b.noise_floor,
        }
    }

    /// What the truth is: the asymptotic λ, or the exact finite-nβ expectation.
    fn truth_label(&self) -> &'static str {
        if self.case == Case::Regular.name() {
            "½ tr(nβH(nβH+γI)⁻¹), exact at this nβ"
        } else {
            "Aoyagi's λ"
        }
    }
}

/// A sampler and the preset it came from.
#[derive(Debug, Clone, Serialize)]
pub struct SamplerInfo {
    pub name: &'static str,
    /// Where the preset was found, e.g. `<built-in sampler/hmc.yaml>` or `config/sampler/hmc.yaml`.
    pub preset: String,
    /// The config the checks ran with (preset plus any --quick overrides).
    pub config: SamplerConfig,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub precision: &'static str,
    pub quick: bool,
    pub cases: Vec<CaseInfo>,
    pub samplers: Vec<SamplerInfo>,
    pub rows: Vec<Row>,
    pub passed: bool,
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| !r.verdict.passed)
    }
}

/// The header lines, the table, and one line per failure with its reasons.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let mode = if r.quick { ", quick" } else { "" };
    out.push_str(&format!("lambda-hat validate ({}{mode})\n", r.precision));
    for c in &r.cases {
        out.push_str(&format!(
            "  {}: {}; n = {}, p = {}, nβ = {:.2}, γ = {}; L0 = {:.4e} (least squares {:.4e}, noise floor ≈ {:.4e}); truth {:.4} = {}\n",
            c.case,
            c.description,
            c.n,
            c.params,
            c.n_beta,
            c.gamma,
            c.l0,
            c.l_min,
            c.noise_floor,
            c.truth,
            c.truth_label()
        ));
    }
    for s in &r.samplers {
        out.push_str(&format!("  {}: preset {}\n", s.name, s.preset));
    }
    out.push('\n');
    out.push_str(&align(&table_cells(&r.rows)));
    for row in r.failures() {
        out.push_str(&format!(
            "FAIL {} on {}: {}\n",
            row.sampler,
            row.case,
            row.verdict.reasons.join("; ")
        ));
    }
    let failed = r.failures().count();
    out.push_str(&if failed == 0 && r.rows.len() == 1 {
        "the check passed\n".to_string()
    } else if failed == 0 {
        format!("all {} checks passed\n", r.rows.len())
    } else {
        format!("{failed} of {} checks FAILED\n", r.rows.len())
    });
    out
}

const HEADER: [&str; 10] = [
    "case",
    "sampler",
    "true λ",
    "estimate ± sem",
    "rel error",
    "tol",
    "acceptance",
    "ESS",
    "time",
    "result",
];

fn table_cells(rows: &[Row]) -> Vec<Vec<String>> {
    let mut cells = vec![HEADER.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        let measured = r.acceptance.map_or("n/a".into(), |a| format!("{a:.3}"));
        let acceptance = match (r.target_acceptance, r.acceptance) {
            (Some(t), _) => format!("{measured} (target {t})"),
            (None, Some(_)) => format!("{measured} (MALA)"),
            (None, None) => "-".into(),
        };
        cells.push(vec![
            r.case.to_string(),
            r.sampler.to_string(),
            format!("{:.4}", r.truth),
            format!("{:.4} ± {:.4}", r.estimate, r.sem),
            percent(r.rel_error),
            format!("{:.0} %", 100.0 * r.tolerance),
            acceptance,
            format!("{:.0}", r.ess),
            format!("{:.1} s", r.walltime_sec),
            if r.verdict.passed { "pass" } else { "FAIL" }.to_string(),
        ]);
    }
    cells
}

/// Left-aligns every column to its widest cell (by characters: λ, ±, → are one column each).
fn align(cells: &[Vec<String>]) -> String {
    let columns = cells.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::check::judge;

    fn row(case: &'static str, sampler: &'static str, estimate: f64) -> Row {
        let tol = 0.10;
        Row {
            case,
            sampler,
            truth: 4.0,
            estimate,
            sem: 0.03,
            rel_error: estimate / 4.0 - 1.0,
            tolerance: tol,
            acceptance: (sampler != "mclmc").then_some(0.81),
            target_acceptance: (sampler == "hmc").then_some(0.8),
            ess: 1234.4,
            r_hat: 1.001,
            chains: 4,
            draws: 100,
            divergences: 0,
            grad_evals: 1000,
            walltime_sec: 2.25,
            warnings: vec![],
            tuned: Default::default(),
            verdict: judge(4.0, estimate, 0.03, tol, None),
        }
    }

    fn report(rows: Vec<Row>) -> Report {
        let passed = rows.iter().all(|r| r.verdict.passed);
        Report {
            precision: "f64",
            quick: true,
            cases: vec![],
            samplers: vec![],
            rows,
            passed,
        }
    }

    #[test]
    fn table_has_a_header_and_one_aligned_line_per_row() {
        let text = render_text(&report(vec![
            row("regular", "hmc", 4.1),
            row("dln432", "hmc", 3.9),
            row("dln432", "sgld", 3.9),
        ]));
        let lines: Vec<&str> = text.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("case")).unwrap();
        let hmc = lines[header + 1];
        assert!(hmc.starts_with("regular  hmc "), "{text}");
        for needle in [
            "4.0000",
            "4.1000 ± 0.0300",
            "+2.50 %",
            "10 %",
            "0.810 (target 0.8)",
            "1234",
            "2.2 s",
            "pass",
        ] {
            assert!(hmc.contains(needle), "{needle:?} missing from {hmc:?}");
        }
        assert!(lines[header + 2].contains("0.810 (target 0.8)"), "{text}");
        assert!(lines[header + 3].contains("0.810 (MALA)"), "{text}");
        // Columns line up: the result column starts at the same character in every line.
        let start = |l: &str| l.rfind("pass").map(|b| l[..b].chars().count());
        assert_eq!(start(hmc), start(lines[header + 3]));
        let header_line = lines[header];
        let result_col = header_line
            .find("result")
            .map(|b| header_line[..b].chars().count());
        assert_eq!(start(hmc), result_col);
        assert!(text.ends_with("all 3 checks passed\n"), "{text}");
    }

    #[test]
    fn failures_are_listed_with_their_reasons() {
        let text = render_text(&report(vec![
            row("dln333", "mclmc", 5.0),
            row("dln432", "hmc", 4.0),
        ]));
        assert!(
            text.contains("FAIL mclmc on dln333: relative error +25.00 % outside ±10 %"),
            "{text}"
        );
        assert!(text.ends_with("1 of 2 checks FAILED\n"), "{text}");
        let table_line = text.lines().find(|l| l.starts_with("dln333")).unwrap();
        assert!(table_line.ends_with("FAIL"));
        // MCLMC has no acceptance rate.
        assert!(table_line.contains("  -  "), "{table_line}");
    }

    #[test]
    fn json_has_nulls_for_missing_numbers() {
        let mut r = row("regular", "mclmc", f64::NAN);
        r.ess = f64::NAN;
        let v = serde_json::to_value(report(vec![r])).unwrap();
        assert_eq!(v["rows"][0]["estimate"], serde_json::Value::Null);
        assert_eq!(v["rows"][0]["acceptance"], serde_json::Value::Null);
        assert_eq!(v["rows"][0]["verdict"]["passed"], false);
        assert_eq!(v["passed"], false);
    }
}
