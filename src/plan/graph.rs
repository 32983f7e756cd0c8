//! Graphviz DOT for `--dag` and `--rulegraph`, and the rule list for `--list`, as Snakemake
//! prints them: pure text from the plan and the schedule.
//!
//! In: the [`Plan`], which jobs the request covers and which of them must run. Out: a DOT
//! digraph (`dot -Tsvg` renders it) whose edges point from a job to the jobs that read its
//! output; jobs with nothing to do are dashed, as in Snakemake's DAG. Labels carry only rule
//! names and hex IDs, which need no escaping in DOT strings.

use std::fmt::Write;

use super::dag::{JobRef, Plan, Rule};
use super::select::Schedule;

/// Snakemake's graph header: white background, rounded boxes, grey edges.
const HEADER: &str = "    graph[bgcolor=white, margin=0];\n    \
                      node[shape=box, style=rounded, fontname=sans, fontsize=10, penwidth=2];\n    \
                      edge[penwidth=2, color=grey];\n";

/// A rule's colour (HSV, as Snakemake spreads its rules over the hue circle).
fn color(rule: Rule) -> String {
    let i = Rule::ALL.iter().position(|r| *r == rule).unwrap_or(0);
    format!("{:.2} 0.6 0.85", i as f64 / Rule::ALL.len() as f64)
}

/// The DAG of the jobs `schedule` selected; those it runs are solid.
pub fn dag_dot(plan: &Plan, schedule: &Schedule) -> String {
    let runs: std::collections::HashSet<JobRef> = schedule.jobs.iter().map(|(j, _)| *j).collect();
    let mut out = String::from("digraph snakemake_dag {\n");
    out.push_str(HEADER);
    let jobs: Vec<(usize, JobRef)> = plan
        .jobs()
        .enumerate()
        .filter(|(i, _)| schedule.selected[*i])
        .collect();
    for (i, job) in &jobs {
        let label = match job {
            JobRef::Target(t) => {
                format!("build_target\\ntarget_id: {}", plan.targets[*t as usize].id)
            }
            JobRef::Run(r) => format!("run_sampler\\nrun_id: {}", plan.run_id(*r)),
        };
        let style = if runs.contains(job) {
            "rounded"
        } else {
            "rounded,dashed"
        };
        let _ = writeln!(
            out,
            "    {i}[label = \"{label}\", color = \"{}\", style=\"{style}\"];",
            color(job.rule())
        );
    }
    for (i, job) in &jobs {
        // `Plan::jobs()` lists the targets first, so a target's node number is its index.
        if let Some(JobRef::Target(t)) = plan.parent(*job) {
            let _ = writeln!(out, "    {t} -> {i}");
        }
    }
    out.push_str("}\n");
    out
}

/// The graph of rules: one node per rule, an edge from each rule to the rules that read it.
pub fn rulegraph_dot() -> String {
    let mut out = String::from("digraph snakemake_dag {\n");
    out.push_str(HEADER);
    for (i, rule) in Rule::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {i}[label = \"{}\", color = \"{}\", style=\"rounded\"];",
            rule.name(),
            color(*rule)
        );
    }
    for (i, rule) in Rule::ALL.iter().enumerate() {
        for up in rule.upstream() {
            let u = Rule::ALL.iter().position(|r| r == up).unwrap_or(0);
            let _ = writeln!(out, "    {u} -> {i}");
        }
    }
    out.push_str("}\n");
    out
}

/// `--list`: each rule's name, then what it makes, indented (Snakemake's layout for a rule with
/// a docstring).
pub fn rule_list() -> String {
    let mut out = String::new();
    for rule in Rule::ALL {
        let _ = writeln!(out, "{}\n    {}", rule.name(), rule.description());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rulegraph_has_one_node_per_rule_and_an_edge_to_each_reader() {
        let dot = rulegraph_dot();
        assert!(dot.starts_with("digraph snakemake_dag {\n") && dot.ends_with("}\n"));
        for rule in Rule::ALL {
            assert!(
                dot.contains(&format!("label = \"{}\"", rule.name())),
                "{dot}"
            );
        }
        assert_eq!(dot.matches(" -> ").count(), 1, "{dot}");
        assert!(dot.contains("    0 -> 1\n"), "{dot}");
    }

    #[test]
    fn rule_list_names_each_rule_then_what_it_makes() {
        let text = rule_list();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "build_target");
        assert!(lines[1].starts_with("    ") && lines[1].contains("meta.json"));
        assert_eq!(lines[2], "run_sampler");
        assert!(lines[3].contains("analysis.json"));
    }
}
