//! The command line as users type it: planning, dry runs, summaries, and one clear message with
//! exit code 2 for every kind of bad input. Runs the real binary on real files.

mod common;

use common::{TINY_SWEEP, Test};
use lambda_hat::exit_code;

const SEED_3X3: &str = include_str!("../config/examples/seed_3x3.yaml");

#[test]
fn seed_example_plans_twelve_jobs() {
    let out = Test::new()
        .experiments(SEED_3X3)
        .args(["-n"])
        .run()
        .success();
    assert_eq!(out.total_jobs(), 12);
    let stdout = out.stdout();
    assert_eq!(stdout.matches("rule build_target:").count(), 3);
    assert_eq!(stdout.matches("rule run_sampler:").count(), 9);
    assert!(stdout.contains("reason: Missing output files"));
    assert!(stdout.contains("This was a dry-run"));
}

#[test]
fn quiet_dry_run_prints_only_the_table() {
    let out = Test::new()
        .experiments(SEED_3X3)
        .args(["-n", "-q"])
        .run()
        .success();
    assert_eq!(out.total_jobs(), 12);
    assert!(!out.stdout().contains("rule "), "{}", out.stdout());
}

#[test]
fn every_example_file_plans() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut n = 0;
    for entry in std::fs::read_dir(format!("{root}/config/examples")).unwrap() {
        let path = entry.unwrap().path();
        let out = Test::new()
            .args(["-n", "-q", "--configfile", path.to_str().unwrap()])
            .run()
            .success();
        assert!(out.total_jobs() > 0, "{}", path.display());
        n += 1;
    }
    assert!(
        n >= 8,
        "expected the guide's sweep patterns in config/examples, found {n}"
    );
}

#[test]
fn globs_select_jobs_and_their_upstream() {
    let t = Test::new().experiments(SEED_3X3);
    assert_eq!(
        t.run_with(&["-n", "-q", "runs/targets/*/meta.json"])
            .success()
            .total_jobs(),
        3
    );
    let hmc = t
        .run_with(&["-n", "runs/targets/*/run_hmc_*/analysis.json"])
        .success();
    // 3 hmc runs plus the 3 targets they need.
    assert_eq!(hmc.total_jobs(), 6);
    assert!(!hmc.stdout().contains("run_sgld_"));
    // Any output names its job (as in Snakemake), however the path is spelled.
    for spelled in [
        "runs/targets/*/run_hmc_*/trace.npz",
        "./runs//targets/../targets/*/run_hmc_*/analysis.json",
    ] {
        assert_eq!(
            t.run_with(&["-n", "-q", spelled]).success().total_jobs(),
            6,
            "{spelled}"
        );
    }
    assert_eq!(
        t.run_with(&["-n", "-q", "runs/targets/*/params.npz"])
            .success()
            .total_jobs(),
        3
    );
}

#[test]
fn duplicate_entries_collapse() {
    let yaml = "targets:\n  - { model: small, data: small, seed: 1 }\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: hmc }\n  - { name: hmc }\n";
    assert_eq!(
        Test::new()
            .experiments(yaml)
            .args(["-n", "-q"])
            .run()
            .success()
            .total_jobs(),
        2
    );
}

#[test]
fn summary_lists_every_output_with_status_and_plan() {
    let out = Test::new()
        .experiments(TINY_SWEEP)
        .args(["--summary"])
        .run()
        .success();
    let lines: Vec<_> = out.stdout().lines().map(String::from).collect();
    assert_eq!(lines[0], "output_file\tdate\trule\tstatus\tplan");
    assert_eq!(lines.len(), 1 + 4);
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains("\tmissing\tupdate pending")),
        "{lines:?}"
    );
    let targets_only = Test::new()
        .experiments(TINY_SWEEP)
        .args(["--summary", "runs/targets/*/meta.json"])
        .run()
        .success();
    assert_eq!(
        targets_only.stdout().lines().count(),
        1 + 2,
        "{}",
        targets_only.stdout()
    );
    let detailed = Test::new()
        .experiments(TINY_SWEEP)
        .args(["-D"])
        .run()
        .success();
    assert!(
        detailed
            .stdout()
            .contains("worker run-sampler runs/targets/tgt_")
    );
}

fn bad(yaml: &str, needles: &[&str]) {
    Test::new()
        .experiments(yaml)
        .args(["-n"])
        .run()
        .failure(exit_code::USAGE)
        .clear_error(needles);
}

/// One data row leaves the posterior's temperature β₀/ln n undefined: refused, not run at a
/// silently substituted n.
#[test]
fn a_single_data_row_is_refused() {
    bad(
        "targets:\n  - { model: small, data: small, seed: 1, overrides: { data: { n_data: 1 } } }\nsamplers:\n  - { name: hmc }\n",
        &["n_data", "at least 2", "ln(n_data)"],
    );
}

/// Sizes that would exhaust memory are refused at plan time (even by `-n`), with the estimate
/// and its largest part, instead of aborting in the worker with "memory allocation failed".
#[test]
fn jobs_too_large_for_memory_are_refused_before_anything_runs() {
    let sweep = |target_overrides: &str, sampler_overrides: &str| {
        format!(
            "targets:\n  - {{ model: small, data: small, seed: 1, overrides: {{ {target_overrides} }} }}\nsamplers:\n  - {{ name: hmc, overrides: {{ {sampler_overrides} }} }}\n"
        )
    };
    // (Counts stop at 10^9; these are within it.)
    bad(
        &sweep("", "draws: 1000000000, chains: 1000"),
        &["run_hmc_", "TB of memory", "the trace", "typo"],
    );
    bad(
        &sweep("data: { n_data: 1000000000 }", ""),
        &["meta.json", "GB of memory", "the data set", "n_data"],
    );
    bad(
        &sweep("model: { widths: [100000, 100000] }", ""),
        &["TB of memory", "the training state"],
    );
    // Planning itself must not try: a width solver over 10^8 layers used to abort (exit 134).
    bad(
        &sweep(
            "model: { depth: 100000000, widths: null, target_params: 80 }",
            "",
        ),
        &["model.depth", "100000000", "10000"],
    );
    // A job larger than its mem_mb (here 1 MB) is told how much to ask for.
    Test::new()
        .experiments(&sweep("", ""))
        .args(["-n", "--set-resources", "run_sampler:mem_mb=1"])
        .run()
        .failure(exit_code::USAGE)
        .clear_error(&["its mem_mb", "--set-resources run_sampler:mem_mb="]);
}

/// One byte that is not UTF-8 in the journal used to make `status` exit 2.
#[test]
fn status_reads_a_journal_with_a_damaged_line() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();
    let journal = t.store().join(".lambda-hat/journal.jsonl");
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes.extend_from_slice(b"\xff\xfe garbage\n");
    std::fs::write(&journal, bytes).unwrap();
    t.run_with(&["status"]).success().stdout_has("total");
}

/// Config strings are someone else's: an ESC sequence in one reaches the terminal escaped.
#[test]
fn control_characters_from_a_config_never_reach_the_terminal_raw() {
    let out = Test::new()
        .experiments(
            "targets:\n  - { model: \"smal\\e]0;pwned\\a\", data: small, seed: 1 }\nsamplers: []\n",
        )
        .args(["-n"])
        .run()
        .failure(exit_code::USAGE);
    let err = out.stderr();
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("\\u{1b}]0;pwned"), "{err}");
}

#[test]
fn unknown_preset_lists_the_valid_ones() {
    bad(
        "targets:\n  - { model: smal, data: small, seed: 1 }\nsamplers: []\n",
        &[
            "unknown model preset `smal`",
            "targets[0]",
            "base, huge, small, wide",
        ],
    );
}

#[test]
fn unknown_override_key_names_the_path_and_valid_keys() {
    bad(
        "targets:\n  - { model: small, data: small, seed: 1, overrides: { model: { actvation: tanh } } }\nsamplers: []\n",
        &[
            "model.actvation",
            "unknown field `actvation`",
            "activation",
            "config/experiments.yaml",
        ],
    );
    bad(
        "targets:\n  - { model: small, data: small, seed: 1, overrides: { modle: { depth: 1 } } }\nsamplers: []\n",
        &[
            "overrides.modle",
            "valid keys here: model, data, teacher, training, posterior",
        ],
    );
}

/// A mistake in a preset file (or workflow.yaml) is named in that file, not in the experiments
/// entry that uses it; the same mistake in an override is the experiments file's.
#[test]
fn a_mistake_in_a_preset_file_is_named_in_that_file() {
    let sweep =
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: hmc }\n";
    let run = |file: &str, text: &str, needles: &[&str]| {
        Test::new()
            .experiments(sweep)
            .file(file, text)
            .run_with(&["-n"])
            .failure(exit_code::USAGE)
            .clear_error(needles);
    };
    run(
        "config/sampler/hmc.yaml",
        "draws: 100\nstep_sise: 0.1\n",
        &[
            "config/sampler/hmc.yaml",
            "sampler preset `hmc`",
            "samplers[0]",
            "step_sise",
        ],
    );
    // A value the sampler refuses: the shipped preset with its draws set to 0.
    let shipped = include_str!("../config/sampler/hmc.yaml");
    let zero_draws: String = shipped
        .lines()
        .map(|l| {
            if l.starts_with("draws:") {
                "draws: 0"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    run(
        "config/sampler/hmc.yaml",
        &zero_draws,
        &["config/sampler/hmc.yaml", "sampler preset `hmc`", "draws"],
    );
    // A file without a key the sampler needs: named, with the key.
    run(
        "config/sampler/hmc.yaml",
        "draws: 100\n",
        &["config/sampler/hmc.yaml", "missing field `warmup`"],
    );
    run(
        "config/model/small.yaml",
        "in_dim: 4\ndepth: 2\nwidths: [8, 8]\nactvation: tanh\n",
        &[
            "config/model/small.yaml",
            "model preset `small`",
            "actvation",
        ],
    );
    run(
        "config/workflow.yaml",
        "training:\n  learning_rat: 0.1\n",
        &["config/workflow.yaml", "training", "learning_rat"],
    );
    // The override's own mistake stays the experiments file's.
    Test::new()
        .experiments(
            "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: hmc, overrides: { step_sise: 0.1 } }\n",
        )
        .run_with(&["-n"])
        .failure(exit_code::USAGE)
        .clear_error(&["config/experiments.yaml", "samplers[0] (name: hmc)", "overrides.step_sise"]);
    // So does a bad item of a list it set, not only a bad scalar.
    Test::new()
        .experiments(
            "targets:\n  - { model: small, data: small, seed: 1, overrides: { model: { widths: [-1, 6] } } }\nsamplers: []\n",
        )
        .run_with(&["-n"])
        .failure(exit_code::USAGE)
        .clear_error(&["config/experiments.yaml", "targets[0]", "model.widths[0]"]);
}

/// A bad key set by `--config` is blamed on the command line, not looked for in the file.
#[test]
fn a_bad_config_assignment_is_named_as_the_command_lines() {
    Test::new()
        .experiments(TINY_SWEEP)
        .run_with(&["-n", "--config", "posterior.gama=10"])
        .failure(exit_code::USAGE)
        .clear_error(&[
            "on the command line by `--config posterior.gama=10`",
            "unknown field `gama`",
        ]);
}

#[test]
fn wrong_type_is_refused() {
    bad(
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: hmc, overrides: { step_size: fast } }\n",
        &["samplers[0] (name: hmc)", "step_size", "invalid type"],
    );
    // SGLD's step size may also be `auto`, and the message says so.
    bad(
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: sgld, overrides: { step_size: fast } }\n",
        &[
            "samplers[0] (name: sgld)",
            "step_size",
            "expected a positive number or `auto`",
        ],
    );
}

#[test]
fn negative_step_size_and_bad_sampler_values_are_refused() {
    bad(
        "targets:\n  - { model: small, data: small, seed: 1, overrides: { training: { steps: 0 } } }\nsamplers:\n  - { name: sgld }\n",
        &["training.steps", "at least 1"],
    );
    Test::new()
        .experiments(TINY_SWEEP)
        .args(["-n", "--set-resources", "run_sampler:cpus_per_task=0"])
        .run()
        .failure(exit_code::USAGE)
        .clear_error(&["cpus_per_task", "at least 1"]);
    bad(
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: sgld, overrides: { step_size: -1e-6 } }\n",
        &["step_size", "must be a positive number"],
    );
    for (over, key) in [
        ("{ num_integration_steps: 0 }", "num_integration_steps"),
        ("{ draws: 0 }", "draws"),
        ("{ chains: 0 }", "chains"),
    ] {
        bad(
            &format!(
                "targets:\n  - {{ model: small, data: small, seed: 1 }}\nsamplers:\n  - {{ name: hmc, overrides: {over} }}\n"
            ),
            &[key, "at least 1"],
        );
    }
    // Counts past 10^9, such as a typed 2^64 - 1: SGLD's warmup + steps wrapped to a run
    // without draws, HMC's leapfrog count overflowed, a mixture's centres overflowed an array.
    for (sampler, over, key) in [
        ("sgld", "{ warmup: 18446744073709551615 }", "warmup"),
        (
            "hmc",
            "{ num_integration_steps: 18446744073709551615 }",
            "num_integration_steps",
        ),
        ("nuts", "{ warmup: 1000000001 }", "warmup"),
        ("mclmc", "{ draws: 1000000001 }", "draws"),
    ] {
        bad(
            &format!(
                "targets:\n  - {{ model: small, data: small, seed: 1 }}\nsamplers:\n  - {{ name: {sampler}, overrides: {over} }}\n"
            ),
            &[key, "at most 1000000000"],
        );
    }
    bad(
        "targets:\n  - { model: small, data: small, seed: 1, overrides: { data: { x_dist: mixture, mixture_components: 101, n_data: 100 } } }\nsamplers: []\n",
        &["mixture_components", "at most n_data (100)"],
    );
    bad(
        "targets:\n  - { model: small, data: small, seed: 1, overrides: { posterior: { gamma: -1 } } }\nsamplers: []\n",
        &["posterior.gamma"],
    );
    // A negative teacher scale is refused; 0 (pure-noise data: a rank-0 teacher) is not.
    bad(
        "targets:\n  - { model: small, data: small, seed: 1, overrides: { teacher: { weight_scale: -1 } } }\nsamplers: []\n",
        &["teacher.weight_scale", "must be a number >= 0"],
    );
    // Widths that do not fit the depth the teacher inherited say where that depth came from.
    bad(
        "targets:\n  - { model: small, data: small, seed: 1, overrides: { model: { depth: 3, widths: [2, 2, 2] }, teacher: { widths: [1] } } }\nsamplers: []\n",
        &[
            "teacher.widths",
            "has 1 entries but depth is 3",
            "the teacher's depth is the model's, 3, unless `teacher.depth` sets it",
        ],
    );
    Test::new()
        .experiments(
            "targets:\n  - { model: small, data: small, seed: 1, overrides: { teacher: { weight_scale: 0 } } }\nsamplers: []\n",
        )
        .args(["-n"])
        .run()
        .success();
    bad(
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: mclmc, overrides: { integrator: verlet } }\n",
        &["integrator", "isokinetic_mclachlan"],
    );
    bad(
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: hmc, overrides: { adaptation: shared } }\n",
        &["adaptation", "pooled", "per_chain"],
    );
    bad(
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: mclmc, overrides: { L: 1.0 } }\n",
        &["L", "without `step_size`"],
    );
    bad(
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: mala }\n",
        &["unknown sampler `mala`", "hmc, nuts, sgld, mclmc"],
    );
    bad(
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: nuts, overrides: { max_tree_depth: 20 } }\n",
        &["max_tree_depth", "1..=15", "got 20"],
    );
}

#[test]
fn empty_targets_and_missing_file_and_malformed_yaml() {
    bad("targets: []\nsamplers: []\n", &["targets list is empty"]);
    bad("samplers: []\n", &["top level: targets: missing"]);
    // A slip in a preset key reads as the key missing; the message names the slip.
    bad(
        "targets:\n  - { model: small, dat: small, seed: 1 }\nsamplers: []\n",
        &["data: missing", "`dat` is not a key"],
    );
    // A sampler written as a bare word: the entry is named once, with no empty key path.
    bad(
        "targets:\n  - { model: small, data: small, seed: 1 }\nsamplers: [hmc]\n",
        &["samplers[0]: a sampler entry must be a mapping"],
    );
    Test::new()
        .args(["-n"])
        .run()
        .failure(exit_code::USAGE)
        .clear_error(&["config/experiments.yaml", "--configfile"]);
    bad(
        "targets:\n  - { model: small, data: small\nsamplers: []\n",
        &["malformed YAML", "line 2"],
    );
}

#[test]
fn a_job_larger_than_the_resource_limit_is_refused_at_plan_time() {
    Test::new()
        .experiments(TINY_SWEEP)
        .args(["-n", "--resources", "mem_mb=500"])
        .run()
        .failure(exit_code::USAGE)
        .clear_error(&["mem_mb=1000", "--resources allows at most 500"]);
}

#[test]
fn a_glob_matching_nothing_is_an_error() {
    Test::new()
        .experiments(TINY_SWEEP)
        .args(["-n", "runs/targets/tgt_nothing/meta.json"])
        .run()
        .failure(exit_code::USAGE)
        .clear_error(&["matches no output", "runs/targets/tgt_"]);
    // Not a dry run: the mistakes are refused before the store is locked or the sweep
    // recorded, so nothing is left behind (a misspelt subcommand used to leave runs/ with a
    // lock file and a sweep record).
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["statsu"])
        .failure(exit_code::USAGE)
        .clear_error(&["matches no output", "did you mean `status`"]);
    t.run_with(&["-j", "1", "--forcerun", "train"])
        .failure(exit_code::USAGE)
        .clear_error(&["unknown rule `train`"]);
    assert!(
        !t.store().exists(),
        "a refused request wrote {}",
        t.store().display()
    );
}

#[test]
fn bad_flags_and_rules_are_usage_errors() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-n", "--forcerun", "train"])
        .failure(exit_code::USAGE)
        .clear_error(&["unknown rule `train`"]);
    t.run_with(&["-n", "--set-resources", "run_sampler:mem_mb=lots"])
        .failure(exit_code::USAGE)
        .clear_error(&["mem_mb", "lots"]);
    t.run_with(&["-n", "--profile", "nonexistent"])
        .failure(exit_code::USAGE)
        .clear_error(&["unknown profile", "profiles/nonexistent"]);
    let typo = t.run_with(&["-n", "--dry-runn"]);
    assert_eq!(typo.code(), Some(exit_code::USAGE));
    assert!(
        typo.stderr().contains("--dry-run"),
        "clap suggests the right flag: {}",
        typo.stderr()
    );
}

#[test]
fn a_no_flag_turns_off_what_the_profile_turned_on() {
    let t = Test::new()
        .experiments(TINY_SWEEP)
        .file("profiles/p/config.yaml", "quiet: true\n");
    let quiet = t.run_with(&["-n", "--profile", "profiles/p"]).success();
    assert!(
        !quiet.stdout().contains("rule build_target:"),
        "{}",
        quiet.stdout()
    );
    t.run_with(&["-n", "--profile", "profiles/p", "--no-quiet"])
        .success()
        .stdout_has("rule build_target:");
    // Of --flag and --no-flag the last one wins.
    let last = t
        .run_with(&["-n", "--profile", "profiles/p", "--no-quiet", "-q"])
        .success();
    assert!(
        !last.stdout().contains("rule build_target:"),
        "{}",
        last.stdout()
    );
}

/// A Snakemake profile's habits: `printshellcmds`, `set-resources` as a list of the flag's
/// words, and Snakemake's resource names `mem` (with a unit) and `threads`.
#[test]
fn a_snakemake_style_profile_means_what_it_says() {
    let profile = "restart-times: 2\nprintshellcmds: true\nset-resources:\n  - run_sampler:mem=4G\n  - build_target:threads=2\n";
    let t = Test::new()
        .experiments(TINY_SWEEP)
        .file("profiles/p/config.yaml", profile);
    let dry = t.run_with(&["-n", "--profile", "profiles/p"]).success();
    dry.stdout_has("worker build-target")
        .stdout_has("resources: cpus_per_task=1, mem_mb=4000, runtime=120")
        .stdout_has("resources: cpus_per_task=2, mem_mb=1000, runtime=60");
}

/// `mem` and `mem_mb` (or `time` and `runtime`) are one resource: both in one layer, with
/// different values, is a mistake named with the two assignments, not a silent pick.
#[test]
fn one_resource_under_two_names_in_one_layer_is_refused() {
    let t = Test::new().experiments(TINY_SWEEP).file(
        "profiles/p/config.yaml",
        "default-resources:\n  time: 60\n  runtime: 90\n",
    );
    t.run_with(&[
        "-n",
        "--set-resources",
        "run_sampler:mem=4G",
        "run_sampler:mem_mb=1000",
    ])
    .failure(exit_code::USAGE)
    .clear_error(&[
        "mem_mb is given twice in --set-resources (run_sampler)",
        "`run_sampler:mem=4G`",
        "`run_sampler:mem_mb=1000`",
    ]);
    t.run_with(&["-n", "--profile", "profiles/p"])
        .failure(exit_code::USAGE)
        .clear_error(&["runtime is given twice in the profile's default-resources"]);
    // Across layers the later one still wins, and the same value under both names is fine.
    t.run_with(&[
        "-n",
        "--default-resources",
        "mem=4G",
        "--set-resources",
        "run_sampler:mem_mb=2000",
        "run_sampler:mem=2G",
    ])
    .success()
    .stdout_has("resources: cpus_per_task=1, mem_mb=2000, runtime=120");
}

#[test]
fn an_unknown_executor_is_refused_with_the_valid_ones() {
    let t = Test::new()
        .experiments(TINY_SWEEP)
        .file("profiles/p/config.yaml", "executor: slurmx\n");
    t.run_with(&["-n", "--profile", "profiles/p"])
        .failure(exit_code::USAGE)
        .clear_error(&["executor", "slurmx", "`local` or `slurm`"]);
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-n", "--executor", "slurmx"])
        .failure(exit_code::USAGE)
        .clear_error(&["slurmx", "local", "slurm"]);
}

#[test]
fn a_bad_bundle_size_is_refused_naming_the_key_and_the_file() {
    let t = Test::new()
        .experiments(TINY_SWEEP)
        .file("profiles/p/config.yaml", "bundle-size: lots\n");
    t.run_with(&["-n", "--profile", "profiles/p"])
        .failure(exit_code::USAGE)
        .clear_error(&["bundle-size", "lots", "profiles/p/config.yaml", "`auto`"]);
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-n", "--bundle-size", "0"])
        .failure(exit_code::USAGE)
        .clear_error(&["--bundle-size", "positive integer or `auto`"]);
    // Valid values plan as usual (the command line wins over the profile's).
    let t = Test::new()
        .experiments(TINY_SWEEP)
        .file("profiles/p/config.yaml", "bundle-size: auto\n");
    t.run_with(&["-n", "--profile", "profiles/p", "--bundle-size", "4"])
        .success()
        .stderr_has("ignores it");
}

/// `-n` with a SLURM profile ends with the sbatch calls a run would make, naming the jobs by
/// the listing's jobids: builds alone and runs in arrays with `afterok`, or, with
/// `--bundle-size`, each build with its runs in one bundle. A local dry run has no such section.
#[test]
fn a_dry_run_on_slurm_shows_the_sbatch_calls_and_bundles() {
    let t = Test::new()
        .experiments(TINY_SWEEP)
        .file("profiles/p/config.yaml", "executor: slurm\njobs: 7\n");
    t.run_with(&["-n", "--profile", "profiles/p"])
        .success()
        .stdout_has(
            "SLURM submissions if every job succeeds (no bundles): 4 sbatch call(s), 4 SLURM job(s) or array task(s):\n    sbatch 1: jobid 0\n    sbatch 2: jobid 1\n    sbatch 3: jobid 2 (afterok: sbatch 1)\n    sbatch 4: jobid 3 (afterok: sbatch 2)\n",
        );
    t.run_with(&["-n", "--profile", "profiles/p", "--bundle-size", "2"])
        .success()
        .stdout_has(
            "(bundle-size 2): 1 sbatch call(s), 2 SLURM job(s) or array task(s):\n    sbatch 1: array of 2 bundles: jobids 0 2 | 1 3\n",
        );
    // More SLURM jobs than -j: listed all the same, with what -j changes.
    t.run_with(&["-n", "--profile", "profiles/p", "-j", "2"])
        .success()
        .stdout_has("4 SLURM job(s) or array task(s); -j 2 queues at most 2 at once");
    t.run_with(&["-n"])
        .success()
        .stdout_lacks("SLURM submissions");
}

/// SLURM profile numbers out of range are refused, not applied quietly: a retry factor of 1e308
/// asked for an unlimited time limit, a max-array-size of 0 turned arrays off.
#[test]
fn out_of_range_slurm_profile_numbers_are_refused() {
    for (line, needles) in [
        ("retry-factor: 1.0e308", ["retry-factor", "at most 10"]),
        ("max-array-size: 0", ["max-array-size", "use-arrays: false"]),
        ("array-throttle: 0", ["array-throttle", "at least 1"]),
    ] {
        let t = Test::new().experiments(TINY_SWEEP).file(
            "profiles/p/config.yaml",
            &format!("executor: slurm\n{line}\n"),
        );
        t.run_with(&["-n", "--profile", "profiles/p"])
            .failure(exit_code::USAGE)
            .clear_error(&needles);
    }
}

/// SLURM's flags on a local sweep: --detach, which would run the whole sweep in the foreground,
/// is refused; --bundle-size, harmless, is noted as ignored.
#[test]
fn slurm_flags_on_a_local_sweep_are_refused_or_noted() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "1", "--detach"])
        .failure(exit_code::USAGE)
        .clear_error(&["--detach", "runs locally", "--executor slurm"]);
    assert!(!t.store().exists(), "nothing ran");
}

/// Runs `lambda-hat ARGS` in `t`'s directory with stdout and stderr as given.
fn run_with_streams(
    t: &Test,
    args: &[&str],
    stdout: std::process::Stdio,
    stderr: std::process::Stdio,
) -> std::process::Output {
    std::process::Command::new(common::BIN)
        .args(args)
        .current_dir(t.path())
        .stdout(stdout)
        .stderr(stderr)
        .output()
        .expect("run lambda-hat")
}

#[test]
fn a_closed_pipe_on_both_streams_is_an_error_not_a_panic() {
    // `lambda-hat -n 2>&1 | head -0`: the reader is gone before the first line. Writing the plan
    // fails, and so does writing the error about it; the exit code must still be the
    // environment's (3), not a panic's (101).
    let t = Test::new().experiments(TINY_SWEEP);
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let err_end = writer.try_clone().expect("clone the pipe's write end");
    let out = run_with_streams(&t, &["-n"], writer.into(), err_end.into());
    assert_eq!(
        out.status.code(),
        Some(exit_code::ENVIRONMENT),
        "{:?}",
        out.status
    );
}

#[test]
fn a_closed_stderr_does_not_stop_a_sweep() {
    // Progress lines go to stderr; when nobody reads them (`2>&1 | head` after head exits) the
    // sweep goes on and finishes its jobs.
    let t = Test::new().experiments(TINY_SWEEP);
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = run_with_streams(
        &t,
        &["-j", "2"],
        std::process::Stdio::piped(),
        writer.into(),
    );
    assert!(out.status.success(), "{:?}", out.status);
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");
}

/// `results`, `report` and `promote` read the sweep the experiments file describes; a file the
/// user named that is missing or wrong is an error, as for `status`, not a quiet read of the
/// whole store (which looked like that sweep's results).
#[test]
fn report_commands_refuse_a_sweep_file_they_cannot_read() {
    let promote_bin = env!("CARGO_BIN_EXE_lambda-hat-promote");
    for args in [
        vec!["results", "--configfile", "missing.yaml"],
        vec!["report", "--configfile", "missing.yaml", "-o", "r.html"],
        vec!["promote", "gallery", "--configfile", "missing.yaml"],
    ] {
        Test::new()
            .experiments(TINY_SWEEP)
            .args(args)
            .run()
            .failure(exit_code::USAGE)
            .stderr_has("missing.yaml");
    }
    Test::new()
        .experiments(TINY_SWEEP)
        .args(["results", "--config", "training.stepz=1"])
        .run()
        .failure(exit_code::USAGE)
        .stderr_has("stepz");
    // The old binary is the same command: it reads the experiments file too.
    let t = Test::new().experiments(TINY_SWEEP);
    let out = std::process::Command::new(promote_bin)
        .args(["gallery", "--configfile", "missing.yaml"])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit_code::USAGE));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

/// Read as PyYAML (Snakemake's reader) reads it: a byte-order mark at the start, and merge keys
/// that share settings between entries.
#[test]
fn a_byte_order_mark_and_yaml_merge_keys_are_read_as_pyyaml_reads_them() {
    let yaml = "\u{feff}store_root: runs\ntargets:\n  - &base { model: small, data: small, seed: 1, overrides: { data: { n_data: 200 } } }\n  - { <<: *base, seed: 2 }\nsamplers:\n  - { name: sgld }\n";
    Test::new()
        .experiments(yaml)
        .args(["-n", "-q"])
        .run()
        .success()
        .stdout_has("build_target        2");
}

/// `-n` changes nothing, `--unlock` included: it says what would be removed and removes nothing;
/// a repeated flag (`-n --dryrun`) is accepted as Snakemake accepts it.
#[test]
fn unlock_under_dry_run_removes_nothing() {
    let t = Test::new().experiments(TINY_SWEEP);
    let lock = t.store().join(".lambda-hat/lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let record = r#"{"pid": 1, "host": "another-host-that-crashed"}"#;
    std::fs::write(&lock, record).unwrap();
    t.run_with(&["-n", "--unlock", "--dryrun"])
        .success()
        .stderr_has("Would unlock")
        .stderr_has("nothing removed");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), record);
    t.run_with(&["--unlock"]).success().stderr_has("Unlocked");
    assert!(!lock.exists());
}

/// A bare word a slip away from a subcommand is read as an output glob; the message names the
/// subcommand meant. A Snakemake flag lambda-hat lacks gets its own hint, not clap's nearest.
#[test]
fn misspelt_subcommands_and_snakemake_only_flags_get_a_hint() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["statsu"])
        .failure(exit_code::USAGE)
        .stderr_has("did you mean `status`?");
    t.run_with(&["resutls"])
        .failure(exit_code::USAGE)
        .stderr_has("did you mean `results`?");
    // Outside a project folder too, where the missing experiments file is reported first.
    let empty = Test::new();
    empty
        .run_with(&["statsu"])
        .failure(exit_code::USAGE)
        .stderr_has("cannot read config file")
        .stderr_has("did you mean `status`?");
    let out = empty.run_with(&["runs/x"]).failure(exit_code::USAGE);
    assert!(!out.stderr().contains("did you mean"), "{}", out.stderr());
    t.run_with(&["--slurm"])
        .failure(exit_code::USAGE)
        .stderr_has("--executor slurm");
    let out = t.run_with(&["--nolock"]).failure(exit_code::USAGE);
    assert!(!out.stderr().contains("'--unlock'"), "{}", out.stderr());
}
