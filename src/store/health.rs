//! Health of the finished jobs of a sweep: whether each sampler run passed its health checks
//! (analysis.json `healthy`/`warnings`) and whether each target is a converged minimum
//! (meta.json `convergence`), gathered for the sweep's closing summary and `status`.
//!
//! Data enters from the store: the analysis.json of every finished run and the meta.json of
//! every built target of a [`Plan`], parsed only for their health fields (the same
//! [`RunHealthFields`] and [`TargetHealthFields`] the reports and the worker read). It leaves as
//! a [`StoreHealth`] and, from it, plain text lines (pure functions, unit-tested).
//!
//! Older stores have no `healthy` (it is derived as "no warnings") and no `convergence` (the
//! target's convergence is unknown: not a problem, but not counted as converged either). A file
//! that cannot be read or parsed never stops a report: it is counted as unreadable and named.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::plan::{JobRef, OutputStatus, Plan};

/// How many problems the closing summary names before it says "... and K more".
pub const SUMMARY_LINES: usize = 20;

/// `convergence` in meta.json: whether training reached a minimum. Every field is optional so
/// that a partial or newer object still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    pub converged: Option<bool>,
    pub grad_norm: Option<f64>,
    pub grad_tol: Option<f64>,
    /// Deep linear targets: how far L0 is above the network's exact minimum, in LLC units.
    #[serde(default)]
    pub excess_over_minimum: Option<f64>,
    /// The rest of what training recorded (criterion, steps, the finish), kept as written.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `null` (or an absent key) as an empty list.
fn null_is_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// The health fields of a target's meta.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetHealthFields {
    #[serde(default)]
    pub convergence: Option<Convergence>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub warnings: Vec<String>,
}

impl TargetHealthFields {
    /// `Some(true|false)` when meta.json says; `None` (unknown) for stores from before it did.
    pub fn converged(&self) -> Option<bool> {
        self.convergence.as_ref()?.converged
    }

    /// Why the target is not converged: its own "target not converged" warning, else its first
    /// warning, else one made from the numbers. `None` unless `converged()` is `Some(false)`.
    pub fn not_converged_reason(&self) -> Option<String> {
        if self.converged() != Some(false) {
            return None;
        }
        let own = self
            .warnings
            .iter()
            .find(|w| w.starts_with("target not converged"))
            .or(self.warnings.first());
        Some(match own {
            Some(w) => w.clone(),
            None => format!("target not converged: {}", self.gradient_text()),
        })
    }

    /// The run-level warning a sampler run on this target carries, if the target is known not
    /// to be converged.
    pub fn run_warning(&self, target_id: &str) -> Option<String> {
        (self.converged() == Some(false)).then(|| {
            // A saddle passed the gradient test, so a tighter grad_tol is what lets training go
            // on past it; more steps alone stop at the same tolerance.
            let c = self.convergence.clone().unwrap_or_default();
            let saddle = matches!((c.grad_norm, c.grad_tol), (Some(g), Some(t)) if g <= t)
                && c.excess_over_minimum.is_some();
            let fix = if saddle {
                "train the target further: lower training.grad_tol and raise training.steps"
            } else {
                "train the target longer: training.steps"
            };
            format!(
                "target {target_id} is not a converged minimum ({}): the LLC is defined at a \
                 local minimum, and an estimate elsewhere does not measure a minimum's geometry \
                 ({fix})",
                self.gradient_text()
            )
        })
    }

    /// Why the target is not a minimum, in numbers: its gradient, or, when the gradient passed,
    /// its excess over a deep linear network's exact minimum (a saddle, `train.rs`).
    fn gradient_text(&self) -> String {
        let c = self.convergence.clone().unwrap_or_default();
        let gradient_passed = matches!((c.grad_norm, c.grad_tol), (Some(g), Some(t)) if g <= t);
        if let (true, Some(excess)) = (gradient_passed, c.excess_over_minimum) {
            return format!("a saddle: loss {excess:.3} LLC units above its least-squares minimum");
        }
        let num = |x: Option<f64>| x.map_or("unknown".to_string(), |x| format!("{x:.3e}"));
        format!(
            "gradient norm {} > tol {}",
            num(c.grad_norm),
            num(c.grad_tol)
        )
    }
}

/// The health fields of a run's analysis.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunHealthFields {
    /// Absent in stores written before it existed.
    #[serde(default)]
    pub healthy: Option<bool>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub warnings: Vec<String>,
}

impl RunHealthFields {
    /// `healthy` as written, or derived as "no warnings" for older analysis.json files.
    pub fn is_healthy(&self) -> bool {
        self.healthy.unwrap_or(self.warnings.is_empty())
    }

    /// The first reason the run is unhealthy, if it is.
    pub fn first_warning(&self) -> Option<String> {
        if self.is_healthy() {
            return None;
        }
        Some(
            self.warnings
                .first()
                .cloned()
                .unwrap_or_else(|| "marked unhealthy (no warning recorded)".into()),
        )
    }
}

/// A titled list of problems, at most `n` of them, then "... and K more".
fn section(out: &mut Vec<String>, title: String, items: &[Problem], n: usize) {
    if items.is_empty() {
        return;
    }
    out.push(title);
    for p in &items[..n.min(items.len())] {
        out.push(format!("  {} : {}", p.path.display(), p.reason));
    }
    if items.len() > n {
        out.push(format!("  ... and {} more", items.len() - n));
    }
}

/// A run or target with a health problem, and the first reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: PathBuf,
    pub reason: String,
}

/// The health of a sweep's finished jobs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreHealth {
    /// Finished sampler runs whose analysis.json was read.
    pub runs: usize,
    pub unhealthy: Vec<Problem>,
    /// Built targets whose meta.json was read.
    pub targets: usize,
    pub unconverged: Vec<Problem>,
    /// Built targets whose meta.json does not say (stores from before convergence was recorded).
    pub convergence_unknown: usize,
    /// Markers that exist but cannot be read or parsed.
    pub unreadable: Vec<Problem>,
    /// Finished runs whose target was rebuilt or damaged since: not results of this sweep's
    /// target (`results` lists them apart, the next run redoes them), so neither healthy nor
    /// unhealthy.
    pub outdated_runs: usize,
}

fn read_fields<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

impl StoreHealth {
    /// Reads the markers of the plan's finished jobs (`status` says which are done).
    pub fn scan(plan: &Plan, status: &dyn OutputStatus) -> StoreHealth {
        let mut health = StoreHealth::default();
        for job in plan.jobs().filter(|j| status.done(plan, *j)) {
            if matches!(job, JobRef::Run(_)) && status.outdated(plan, job) {
                health.outdated_runs += 1;
                continue;
            }
            let marker = plan.output(job);
            let dir = plan.job_dir(job);
            match job {
                JobRef::Target(_) => match read_fields(&marker) {
                    Ok(fields) => health.add_target(dir, &fields),
                    Err(e) => health.add_unreadable(marker, e),
                },
                JobRef::Run(_) => match read_fields(&marker) {
                    Ok(fields) => health.add_run(dir, &fields),
                    Err(e) => health.add_unreadable(marker, e),
                },
            }
        }
        health
    }

    pub fn add_run(&mut self, dir: PathBuf, fields: &RunHealthFields) {
        self.runs += 1;
        if let Some(reason) = fields.first_warning() {
            self.unhealthy.push(Problem { path: dir, reason });
        }
    }

    pub fn add_target(&mut self, dir: PathBuf, fields: &TargetHealthFields) {
        self.targets += 1;
        match fields.converged() {
            None => self.convergence_unknown += 1,
            Some(true) => {}
            Some(false) => self.unconverged.push(Problem {
                path: dir,
                reason: fields.not_converged_reason().unwrap_or_default(),
            }),
        }
    }

    fn add_unreadable(&mut self, path: PathBuf, error: String) {
        self.unreadable.push(Problem {
            path,
            reason: format!("cannot be read: {error}"),
        });
    }

    pub fn healthy_runs(&self) -> usize {
        self.runs - self.unhealthy.len()
    }

    /// The closing summary of a sweep: each problem with its first reason, at most `max_lines`
    /// of them (runs first; targets keep at least half the lines when both overflow, since an
    /// unconverged target is often the cause of its runs' problems). Empty when nothing was read.
    pub fn summary(&self, max_lines: usize) -> Vec<String> {
        let mut out = Vec::new();
        if self.runs + self.targets + self.unreadable.len() == 0 {
            return out;
        }
        let problems = self.unhealthy.len() + self.unconverged.len() + self.unreadable.len();
        if problems == 0 {
            if self.runs > 0 {
                out.push(format!(
                    "All {} finished sampler run(s) are healthy.",
                    self.runs
                ));
            }
            return out;
        }
        let others = self.unconverged.len() + self.unreadable.len();
        let run_lines = self
            .unhealthy
            .len()
            .min(max_lines.saturating_sub(others).max(max_lines / 2));
        let mut left = max_lines.saturating_sub(run_lines);
        section(
            &mut out,
            format!(
                "{} of {} sampler runs are unhealthy:",
                self.unhealthy.len(),
                self.runs
            ),
            &self.unhealthy,
            run_lines,
        );
        let target_lines = self.unconverged.len().min(left);
        left -= target_lines;
        section(
            &mut out,
            format!(
                "{} of {} targets did not converge:",
                self.unconverged.len(),
                self.targets
            ),
            &self.unconverged,
            target_lines,
        );
        section(
            &mut out,
            format!("{} result file(s) cannot be read:", self.unreadable.len()),
            &self.unreadable,
            left,
        );
        out.push(
            "Every run's warnings: `lambda-hat results --format csv` (columns healthy, warnings); \
             `--healthy-only` keeps the healthy runs."
                .into(),
        );
        out
    }

    /// `status`'s one-line count, e.g. `health: 5 healthy, 1 unhealthy runs; 1 of 2 targets not
    /// converged`.
    pub fn status_line(&self) -> String {
        let mut line = format!(
            "health: {} healthy, {} unhealthy runs; {} of {} targets not converged",
            self.healthy_runs(),
            self.unhealthy.len(),
            self.unconverged.len(),
            self.targets
        );
        if self.convergence_unknown > 0 {
            line.push_str(&format!(
                " ({} unknown: built before convergence was recorded)",
                self.convergence_unknown
            ));
        }
        if self.outdated_runs > 0 {
            line.push_str(&format!(
                "; {} outdated run(s) not counted (their target was rebuilt or damaged: redone by \
                 the next run)",
                self.outdated_runs
            ));
        }
        if !self.unreadable.is_empty() {
            line.push_str(&format!("; {} unreadable", self.unreadable.len()));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(json: &str) -> RunHealthFields {
        serde_json::from_str(json).unwrap()
    }

    fn target(json: &str) -> TargetHealthFields {
        serde_json::from_str(json).unwrap()
    }

    fn problem(path: &str, reason: &str) -> Problem {
        Problem {
            path: PathBuf::from(path),
            reason: reason.into(),
        }
    }

    #[test]
    fn healthy_is_read_or_derived_from_the_warnings() {
        assert!(run(r#"{"healthy": true, "warnings": []}"#).is_healthy());
        assert!(!run(r#"{"healthy": false, "warnings": ["x"]}"#).is_healthy());
        // Older analysis.json: no `healthy`.
        assert!(run(r#"{"warnings": []}"#).is_healthy());
        assert!(run(r#"{"warnings": null}"#).is_healthy());
        let old = run(r#"{"warnings": ["R-hat 1.2 > 1.01", "bulk ESS 12 < 100"]}"#);
        assert!(!old.is_healthy());
        assert_eq!(old.first_warning().as_deref(), Some("R-hat 1.2 > 1.01"));
        assert_eq!(
            run(r#"{"healthy": false}"#).first_warning().as_deref(),
            Some("marked unhealthy (no warning recorded)")
        );
    }

    #[test]
    fn a_saddle_run_warning_says_to_lower_grad_tol() {
        let saddle = target(
            r#"{"convergence": {"converged": false, "grad_norm": 0.5, "grad_tol": 10.0,
                                "excess_over_minimum": 12.0}}"#,
        );
        let w = saddle.run_warning("tgt_a").unwrap();
        assert!(w.contains("a saddle"), "{w}");
        assert!(w.contains("lower training.grad_tol"), "{w}");
        let short =
            target(r#"{"convergence": {"converged": false, "grad_norm": 0.5, "grad_tol": 0.1}}"#);
        let w = short.run_warning("tgt_a").unwrap();
        assert!(
            w.ends_with("(train the target longer: training.steps)"),
            "{w}"
        );
    }

    #[test]
    fn convergence_is_true_false_or_unknown() {
        let old = target(r#"{"target_id": "tgt_a", "metrics": {}}"#);
        assert_eq!(old.converged(), None);
        assert_eq!(old.run_warning("tgt_a"), None);
        assert_eq!(old.not_converged_reason(), None);
        let ok = target(r#"{"convergence": {"converged": true, "grad_norm": 1e-9}}"#);
        assert_eq!(ok.converged(), Some(true));
        assert_eq!(ok.run_warning("tgt_a"), None);

        let bad = target(
            r#"{"warnings": ["other", "target not converged: gradient norm 0.3"],
                "convergence": {"converged": false, "grad_norm": 0.25, "grad_tol": 0.0001,
                                "criterion": "grad_norm", "finish": "lbfgs"}}"#,
        );
        assert_eq!(bad.converged(), Some(false));
        assert_eq!(
            bad.not_converged_reason().as_deref(),
            Some("target not converged: gradient norm 0.3")
        );
        let w = bad.run_warning("tgt_a").unwrap();
        assert!(
            w.starts_with(
                "target tgt_a is not a converged minimum (gradient norm 2.500e-1 > tol 1.000e-4): \
                 the LLC is defined at a local minimum,"
            ),
            "{w}"
        );
        // A saddle (gradient below tolerance) is named as one, not as a large gradient.
        let saddle = target(
            r#"{"convergence": {"converged": false, "grad_norm": 7.1e-5, "grad_tol": 9.2e-5,
                                "excess_over_minimum": 0.372}}"#,
        );
        let w = saddle.run_warning("tgt_s").unwrap();
        assert!(
            w.starts_with(
                "target tgt_s is not a converged minimum (a saddle: loss 0.372 LLC units above \
                 its least-squares minimum)"
            ),
            "{w}"
        );
        // Without its own warning the reason is made from the numbers.
        let bare = target(r#"{"convergence": {"converged": false, "grad_norm": 2.0}}"#);
        assert_eq!(
            bare.not_converged_reason().as_deref(),
            Some("target not converged: gradient norm 2.000e0 > tol unknown")
        );
    }

    #[test]
    fn counts_and_the_status_line() {
        let mut h = StoreHealth::default();
        for (i, json) in [
            r#"{"healthy": true, "warnings": []}"#,
            r#"{"healthy": false, "warnings": ["R-hat 1.230 > 1.01: disagree"]}"#,
            r#"{"warnings": []}"#,
        ]
        .iter()
        .enumerate()
        {
            h.add_run(PathBuf::from(format!("runs/targets/t/run_{i}")), &run(json));
        }
        h.add_target(
            PathBuf::from("runs/targets/t"),
            &target(r#"{"convergence": {"converged": false}}"#),
        );
        h.add_target(
            PathBuf::from("runs/targets/u"),
            &target(r#"{"convergence": {"converged": true}}"#),
        );
        h.add_target(PathBuf::from("runs/targets/v"), &target("{}"));
        assert_eq!(h.runs, 3);
        assert_eq!(
            h.unhealthy,
            [problem(
                "runs/targets/t/run_1",
                "R-hat 1.230 > 1.01: disagree"
            )]
        );
        assert_eq!(
            h.status_line(),
            "health: 2 healthy, 1 unhealthy runs; 1 of 3 targets not converged \
             (1 unknown: built before convergence was recorded)"
        );
    }

    #[test]
    fn summary_lists_each_problem_with_its_first_reason() {
        let h = StoreHealth {
            runs: 6,
            unhealthy: vec![
                problem("runs/targets/tgt_a/run_sgld_1", "R-hat 1.230 > 1.01: x"),
                problem("runs/targets/tgt_a/run_hmc_2", "bulk ESS 40 < 100: y"),
            ],
            targets: 2,
            unconverged: vec![problem("runs/targets/tgt_a", "target not converged: z")],
            ..Default::default()
        };
        let lines = h.summary(SUMMARY_LINES);
        assert_eq!(
            lines[..5],
            [
                "2 of 6 sampler runs are unhealthy:",
                "  runs/targets/tgt_a/run_sgld_1 : R-hat 1.230 > 1.01: x",
                "  runs/targets/tgt_a/run_hmc_2 : bulk ESS 40 < 100: y",
                "1 of 2 targets did not converge:",
                "  runs/targets/tgt_a : target not converged: z",
            ]
        );
        assert!(lines[5].contains("--healthy-only"), "{lines:?}");
        assert_eq!(lines.len(), 6);

        let fine = StoreHealth {
            runs: 4,
            targets: 1,
            ..Default::default()
        };
        assert_eq!(
            fine.summary(SUMMARY_LINES),
            ["All 4 finished sampler run(s) are healthy."]
        );
        assert!(StoreHealth::default().summary(SUMMARY_LINES).is_empty());
    }

    #[test]
    fn summary_is_capped_and_keeps_room_for_targets() {
        let many = |n: usize, what: &str| -> Vec<Problem> {
            (0..n)
                .map(|i| problem(&format!("{what}{i}"), "why"))
                .collect()
        };
        let h = StoreHealth {
            runs: 100,
            unhealthy: many(50, "run"),
            targets: 30,
            unconverged: many(30, "tgt"),
            ..Default::default()
        };
        let lines = h.summary(20);
        let items = lines.iter().filter(|l| l.ends_with(": why")).count();
        assert_eq!(items, 20, "{lines:#?}");
        assert!(
            lines.contains(&"  ... and 40 more".to_string()),
            "{lines:#?}"
        );
        assert!(
            lines.contains(&"  ... and 20 more".to_string()),
            "{lines:#?}"
        );
        // Few targets: the runs get the rest of the lines.
        let h = StoreHealth {
            unconverged: many(2, "tgt"),
            ..h
        };
        let lines = h.summary(20);
        assert!(
            lines.contains(&"  ... and 32 more".to_string()),
            "{lines:#?}"
        );
        assert!(lines.contains(&"  tgt1 : why".to_string()), "{lines:#?}");
    }
}
