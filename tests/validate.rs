//! `lambda-hat validate` as CI and researchers run it: the real binary, real training, real
//! samplers. The quick matrix must pass (it is CI's check that the samplers give the right LLC);
//! bad input must exit 2 naming the valid choices; a sampler preset next to `--configfile` must
//! be the one checked, and a bad one must fail with exit 1.

mod common;

use common::Test;
use lambda_hat::exit_code;

const SAMPLERS: [&str; 4] = ["hmc", "nuts", "sgld", "mclmc"];
const CASES: [&str; 3] = ["regular", "dln432", "dln333"];

#[test]
fn quick_validation_passes_every_check() {
    // A fresh directory: no ./config/sampler presets, so the built-in ones are checked.
    let out = Test::new()
        .args(["validate", "--quick", "--cases", "regular,dln432,dln333"])
        .run()
        .success();
    let stdout = out.stdout();
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| CASES.iter().any(|c| l.starts_with(&format!("{c} "))))
        .collect();
    assert_eq!(rows.len(), 12, "{stdout}");
    for case in CASES {
        for sampler in SAMPLERS {
            let row = rows
                .iter()
                .find(|l| l.split_whitespace().take(2).eq([case, sampler]))
                .unwrap_or_else(|| panic!("no row for {sampler} on {case}:\n{stdout}"));
            assert!(row.ends_with("pass"), "{row}");
            // HMC's and NUTS's acceptance is part of the verdict on every case, not only
            // reported.
            // (The presets' target: 0.99 for both.)
            if sampler == "hmc" || sampler == "nuts" {
                assert!(row.contains("(target 0.99)"), "{row}");
            }
        }
    }
    assert!(stdout.contains("<built-in sampler/hmc.yaml>"), "{stdout}");
    assert!(stdout.ends_with("all 12 checks passed\n"), "{stdout}");
}

/// The trained regression case: default training (Adam, then the L-BFGS finish) and the default
/// posterior, as a new user runs them. A change that leaves targets short of the minimum fails
/// here (validate refuses such a w*), and so does a sampler that is inaccurate or unhealthy on
/// a default target.
#[test]
fn a_target_trained_by_default_is_a_minimum_and_every_sampler_is_accurate_and_healthy_on_it() {
    let out = Test::new()
        .args([
            "validate",
            "--quick",
            "--cases",
            "trained_regular",
            "--json",
        ])
        .run()
        .success();
    let report: serde_json::Value = serde_json::from_str(&out.stdout()).expect("JSON report");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), SAMPLERS.len(), "{report}");
    for row in rows {
        assert_eq!(row["verdict"]["passed"], true, "{row}");
        let tol = if row["sampler"] == "hmc" || row["sampler"] == "nuts" {
            0.05
        } else {
            0.10
        };
        assert_eq!(row["tolerance"], tol, "{row}");
        // Health is part of the verdict on trained cases: R-hat ≤ 1.01, divergences ≤ 0.1 %.
        assert!(row["r_hat"].as_f64().unwrap() <= 1.01, "{row}");
        let draws = (row["chains"].as_u64().unwrap() * row["draws"].as_u64().unwrap()) as f64;
        assert!(
            row["divergences"].as_f64().unwrap() <= 0.001 * draws,
            "{row}"
        );
    }
    let case = &report["cases"][0];
    // The least-squares minimum is where training ended, to a gradient norm below 0.1·ln(n)/n.
    let excess = case["n_beta"].as_f64().unwrap()
        * (case["l0"].as_f64().unwrap() - case["l_min"].as_f64().unwrap());
    assert!(
        excess.abs() < 1e-3 * case["truth"].as_f64().unwrap(),
        "{case}"
    );
}

/// Asserts that every row of a validate JSON report passed, judged on health as well as accuracy,
/// and returns the rows.
fn passed_rows(report: &serde_json::Value, expected: usize) -> Vec<serde_json::Value> {
    let rows = report["rows"].as_array().expect("rows").clone();
    assert_eq!(rows.len(), expected, "{report}");
    for row in &rows {
        assert_eq!(row["verdict"]["passed"], true, "{row}");
        // Health is judged on trained cases: every run's warnings are empty.
        assert_eq!(row["warnings"], serde_json::json!([]), "{row}");
        assert!(row["r_hat"].as_f64().unwrap() <= 1.01, "{row}");
        assert!(row["ess"].as_f64().unwrap() >= 400.0, "{row}");
    }
    rows
}

/// Deep linear networks at n = 10,000 (full-batch gradients cost microseconds: their loss is
/// evaluated on moment-matched rows), trained by default and sampled on the default posterior,
/// against Aoyagi's λ: two, three and four weight layers with the presets of HMC, SGLD and
/// MCLMC at full budget, and with NUTS (`--quick`). Each teacher resolves its full
/// rank at this n (a unit test in `src/validate/cases.rs` checks it), so λ is the truth.
#[test]
fn trained_deep_linear_networks_are_estimated_accurately_and_healthily() {
    let cases = "trained_dln432,trained_dln333,trained_dln3333,trained_dln43332";
    let report = validate_report(&["--cases", cases, "--samplers", "hmc,sgld,mclmc"]);
    assert_eq!(report["quick"], false, "full budgets");
    passed_rows(&report, 12);
    let report = validate_report(&["--quick", "--cases", cases, "--samplers", "nuts"]);
    let rows = passed_rows(&report, 4);
    let truths: Vec<f64> = rows.iter().map(|r| r["truth"].as_f64().unwrap()).collect();
    assert_eq!(truths, [4.0, 4.5, 4.5, 4.0], "Aoyagi's λ of each network");
    for row in &rows {
        assert_eq!(row["divergences"], 0.0, "{row}");
    }
}

/// Deep linear networks whose teacher has lower rank than the student can represent, the
/// other half of Aoyagi's formula: [3,2,3] with a zero teacher (r = 0, λ = 2.5) and [5,3,4,6]
/// with a teacher through one hidden unit (r = 1, λ = 8), trained by default and sampled on
/// the default posterior with every sampler's preset (NUTS `--quick`). Their minima are
/// degenerate, so training may stop a little further from them (`MAX_EXCESS_DEGENERATE` in
/// `src/validate/cases.rs`), and the estimates must still be within the trained cases' bars.
#[test]
fn rank_deficient_deep_linear_networks_are_estimated_accurately_and_healthily() {
    let cases = "trained_dln323_r0,trained_dln5346_r1";
    let report = validate_report(&["--cases", cases, "--samplers", "hmc,sgld,mclmc"]);
    let rows = passed_rows(&report, 6);
    let truths: Vec<f64> = rows.iter().map(|r| r["truth"].as_f64().unwrap()).collect();
    assert_eq!(
        truths,
        [2.5, 2.5, 2.5, 8.0, 8.0, 8.0],
        "Aoyagi's λ at r = 0 and r = 1"
    );
    let report = validate_report(&["--quick", "--cases", cases, "--samplers", "nuts"]);
    passed_rows(&report, 2);
}

/// `lambda-hat validate ARGS --json`, which must succeed, and its report.
fn validate_report(args: &[&str]) -> serde_json::Value {
    let args = ["validate"].iter().chain(args).chain(&["--json"]);
    let out = Test::new().args(args.copied()).run().success();
    serde_json::from_str(&out.stdout()).expect("JSON report")
}

#[test]
fn unknown_names_exit_2_and_list_the_valid_ones() {
    let t = Test::new();
    let out = t
        .run_with(&["validate", "--samplers", "hmc,mala"])
        .failure(exit_code::USAGE);
    for name in ["mala", "hmc", "nuts", "sgld", "mclmc"] {
        assert!(out.stderr().contains(name), "{}", out.stderr());
    }
    let out = t
        .run_with(&["validate", "--cases", "dln44"])
        .failure(exit_code::USAGE);
    for name in ["dln44", "regular", "dln432", "dln333"] {
        assert!(out.stderr().contains(name), "{}", out.stderr());
    }
    t.run_with(&["validate", "--precision", "f16"])
        .failure(exit_code::USAGE)
        .stderr_has("f32");
    t.run_with(&["validate", "--configfile", "missing.yaml"])
        .failure(exit_code::USAGE)
        .clear_error(&["missing.yaml", "no such file"]);
    // Global sweep flags it would ignore are refused, not silently dropped.
    t.run_with(&["validate", "--config", "posterior.gamma=10"])
        .failure(exit_code::USAGE)
        .clear_error(&["validate does not take", "posterior.gamma=10"]);
    t.run_with(&["validate", "--profile", "slurm"])
        .failure(exit_code::USAGE)
        .clear_error(&["validate does not take", "--profile slurm"]);
}

#[test]
fn json_report_has_the_truth_estimate_and_verdict() {
    let out = Test::new()
        .args([
            "validate",
            "--quick",
            "--cases",
            "regular",
            "--samplers",
            "mclmc",
            "--json",
        ])
        .run()
        .success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).expect("stdout is JSON");
    assert_eq!(v["passed"], true);
    assert_eq!(v["quick"], true);
    assert_eq!(v["precision"], "f64");
    let row = &v["rows"][0];
    assert_eq!(row["case"], "regular");
    assert_eq!(row["sampler"], "mclmc");
    assert_eq!(row["verdict"]["passed"], true);
    // ½ Σ nβhᵢ/(nβhᵢ + γ) just below d/2 = 20 at nβ ≈ 80.
    let truth = row["truth"].as_f64().unwrap();
    assert!(truth > 19.5 && truth < 20.0, "{truth}");
    let rel = row["rel_error"].as_f64().unwrap();
    assert!(rel.abs() <= row["tolerance"].as_f64().unwrap(), "{rel}");
    assert_eq!(v["cases"][0]["params"], 40);
}

#[test]
fn presets_next_to_the_configfile_are_checked_and_a_bad_one_fails() {
    // An SGLD step 40× the preset's: ε·nβ·h_max ≈ 4e-3 · 80 · 3.2 ≈ 1, far too coarse, so the
    // estimate is off by much more than 15 % (or not finite): a FAIL, exit 1.
    let t = Test::new()
        .file("study/experiments.yaml", "targets: []\nsamplers: []\n")
        .file(
            "study/sampler/sgld.yaml",
            "step_size: 4.0e-3\nwarmup: 200\nsteps: 2000\neval_every: 20\nbatch_size: 256\n",
        );
    let out = t
        .run_with(&[
            "validate",
            "--configfile",
            "study/experiments.yaml",
            "--cases",
            "regular",
            "--samplers",
            "sgld",
        ])
        .failure(exit_code::FAILED);
    let stdout = out.stdout();
    assert!(stdout.contains("study/sampler/sgld.yaml"), "{stdout}");
    assert!(stdout.contains("FAIL sgld on regular"), "{stdout}");
    assert!(
        out.stderr().contains("validation failed: 1 of 1 checks"),
        "{}",
        out.stderr()
    );
}
