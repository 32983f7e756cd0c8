//! A fuzz target for what lambda-hat reads from other people: experiments files (parsed,
//! resolved against the presets, planned, and every job's memory estimated) and resource
//! assignments (`--resources`, `--set-resources`, `slurm_extra`). No input may panic: every
//! one must end as a value or as an error.
//!
//! Inputs are arbitrary strings and random edits of real experiments files (the demo and the
//! guide's examples), which reach much deeper than random text. CI runs it for
//! `LAMBDA_HAT_FUZZ_SECONDS` (default 5); by hand, e.g.
//! `LAMBDA_HAT_FUZZ_SECONDS=60 cargo test --release --test fuzz -- --nocapture`.

use std::path::Path;
use std::time::{Duration, Instant};

use lambda_hat::config::experiments::parse_sweep;
use lambda_hat::config::presets::PresetDirs;
use lambda_hat::exec::resources::{parse_assignment, parse_rule_assignment};
use lambda_hat::exec::slurm::flags::parse_extra;
use lambda_hat::plan::dag::Plan;
use lambda_hat::plan::memory::{run_job, target_job};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const SEEDS: [&str; 3] = [
    include_str!("../config/experiments.yaml"),
    include_str!("../config/examples/seed_3x3.yaml"),
    "store_root: runs\ntargets:\n  - { model: small, data: small, seed: 1, overrides: { model: { depth: 2, widths: [6, 6], activation: identity }, data: { n_data: 10000 }, training: { steps: 50 } } }\nsamplers:\n  - { name: nuts, overrides: { draws: 10 } }\n  - { name: sgld, overrides: { step_size: 1e-5, batch_size: 32, steps: 40, eval_every: 4 } }\n",
];

/// Characters worth inserting: YAML structure, numbers, signs, the big and the odd.
const ALPHABET: &[char] = &[
    '{', '}', '[', ']', ':', ',', '-', ' ', '\n', '#', '"', '\'', '0', '1', '9', 'e', '.', '_',
    '&', '*', '!', '|', '>', '%', '@', '\\', '\t', 'é', '\u{0}', '\u{1b}',
];

fn seconds() -> u64 {
    std::env::var("LAMBDA_HAT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// An experiments text: a seed with up to 8 random edits (insert, delete, replace, or splice in
/// a big number), or arbitrary text.
fn experiments_text() -> impl Strategy<Value = String> {
    let edit = (any::<usize>(), 0u8..4, prop::sample::select(ALPHABET));
    prop_oneof![
        4 => (0..SEEDS.len(), prop::collection::vec(edit, 0..8)).prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = SEEDS[seed].chars().collect();
            for (pos, op, c) in edits {
                let at = pos % (chars.len() + 1);
                match op {
                    0 => chars.insert(at, c),
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    2 if at < chars.len() => chars[at] = c,
                    _ => chars.splice(at..at, "99999999999999999999".chars()).for_each(drop),
                }
            }
            chars.into_iter().collect()
        }),
        1 => any::<String>(),
    ]
}

/// Parses, resolves and plans `text`, and estimates every job's memory: must not panic.
fn exercise_experiments(text: &str, presets: &PresetDirs) {
    let Ok(sweep) = parse_sweep(Path::new("fuzz.yaml"), text, presets) else {
        return;
    };
    let Ok(plan) = Plan::build(&sweep) else {
        return;
    };
    for t in &plan.targets {
        let _ = target_job(&t.config);
    }
    for (r, run) in plan.runs.iter().enumerate() {
        let target = &plan.targets[plan.run_target(r as u32) as usize].config;
        let _ = run_job(target, &plan.samplers[run.sampler as usize]);
    }
}

/// Runs `check` on inputs from `strategy` until the time budget is spent; fails on a panic,
/// with the shrunk input.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value)) {
    let deadline = Instant::now() + Duration::from_secs(seconds());
    let mut rounds = 0u64;
    while Instant::now() < deadline {
        // A fresh runner per round (a runner stops after `cases` successes), seeded by the
        // round number: the run is reproducible and every round sees new inputs.
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&rounds.to_le_bytes());
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 256,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        );
        runner
            .run(&strategy, |input| {
                check(input);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name} (round {rounds}): {e}"));
        rounds += 1;
    }
    eprintln!("{name}: {} inputs, no panic", rounds * 256);
}

#[test]
fn no_experiments_file_panics() {
    let presets =
        PresetDirs::for_experiments_file(Path::new("/nonexistent/config/experiments.yaml"));
    // The seeds themselves must plan: otherwise the edits explore only error paths.
    for seed in SEEDS {
        let sweep = parse_sweep(Path::new("seed.yaml"), seed, &presets).expect("seed parses");
        Plan::build(&sweep).expect("seed plans");
    }
    fuzz("experiments files", experiments_text(), |text| {
        exercise_experiments(&text, &presets)
    });
}

#[test]
fn no_resource_assignment_panics() {
    let word = prop_oneof![
        any::<String>(),
        "[a-z_:=0-9 -]{0,20}",
        "(build_target|run_sampler|x):(mem_mb|runtime|time|slurm_extra)=[-0-9a-z,=.]{0,12}",
    ];
    fuzz("resource assignments", word, |text| {
        let _ = parse_assignment(&text);
        let _ = parse_rule_assignment(&text);
        let _ = parse_extra(&text);
    });
}
