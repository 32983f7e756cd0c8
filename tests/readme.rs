//! README.md is checked against the real binary: every command line of its `bash`/`sh` blocks
//! and every `python` block, so the user guide cannot drift from the code.
//!
//! The test plays a user who follows the README from top to bottom, in a temporary folder that
//! holds a copy of `config/` (with `config/experiments.yaml` replaced by [`TINY_DEMO`], a tiny
//! sweep of the demo's shape), `profiles/`, `tests/python/` and a finished store of that sweep.
//! Every line is classified, and a line that cannot be classified FAILS the test:
//!
//! * `lambda-hat ARGS`, `lambda-hat-promote ARGS`, `cargo run --release -- ARGS`: run with the
//!   binary cargo built for this test, and must exit 0 without a panic.
//!   - Sweep commands run for real (the tiny sweep takes about a second), except those that
//!     would start long or remote work, which get `-n` appended: SLURM (`--profile`,
//!     `--executor slurm`, `--detach`) and experiments files other than the (tiny) demo.
//!   - Subcommands (`results`, `report`, `promote`, `clean`, `status`, `cancel`, `worker`) run as written,
//!     on the finished tiny store. `validate` narrowed with `--cases` runs for real (seconds);
//!     over all cases it takes tens of seconds, so there it only has to parse: `--help` is
//!     appended (clap checks every argument before it), and tests/validate.rs runs `--quick`.
//!   - Target and run IDs in a command must be IDs the real demo sweep (`config/experiments.yaml`)
//!     plans; they are replaced by the tiny sweep's IDs at the same position.
//!   - Globs must be quoted (a shell would expand them), and shell syntax (pipes, redirects,
//!     `&&`, `$(...)`) is refused: lambda-hat commands in the README are plain commands.
//! * `scripts/...` lines must be in [`SCRIPT_LINES`]: the script must exist and be executable,
//!   an argument must be one of its `case` labels, and `.ci/run` must reach it as listed there.
//! * Any other line must be in [`OTHER_LINES`], which says how it is exercised.
//!
//! YAML blocks with `targets:` must plan with `-n` (fragments get `samplers: []`), and the one
//! shown as the demo must equal `config/experiments.yaml`.
//!
//! Python blocks run with `python3` in the same folder (numpy, pandas and arviz are installed by
//! scripts/test.sh; like the pandas test in tests/sweep.rs, this test fails without them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_lambda-hat");
const PROMOTE_BIN: &str = env!("CARGO_BIN_EXE_lambda-hat-promote");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The demo's shape (2 tanh targets × hmc, sgld, mclmc, in the demo's order, with its
/// posterior), shrunk to about a second of work: 200 data points, 100 training steps, tiny chains.
const TINY_DEMO: &str = r#"
store_root: "runs"
jax_enable_x64: true
posterior: { gamma: 100.0 }
targets:
  - { model: small, data: small, teacher: _null, seed: 42, overrides: { model: { activation: tanh }, data: { n_data: 200 }, training: { steps: 100 } } }
  - { model: small, data: small, teacher: _null, seed: 43, overrides: { model: { activation: tanh }, data: { n_data: 200 }, training: { steps: 100 } } }
samplers:
  - { name: hmc, overrides: { chains: 2, warmup: 50, draws: 100, num_integration_steps: 5 } }
  - { name: sgld, overrides: { chains: 2, warmup: 50, steps: 200, eval_every: 10, batch_size: 32 } }
  - { name: mclmc, overrides: { chains: 2, draws: 100, num_tuning_steps: 100 } }
"#;

/// `scripts/...` lines the README may show: (line, how .ci/run reaches it).
const SCRIPT_LINES: &[(&str, &str)] = &[
    ("scripts/test.sh", ".ci/run runs it"),
    (
        "scripts/slurm-local.sh start",
        "scripts/test.sh runs it as root",
    ),
    (
        "scripts/slurm-local.sh status",
        "not run by CI: same script as `start`",
    ),
    (
        "scripts/slurm-local.sh stop",
        "not run by CI: same script as `start`",
    ),
    ("scripts/bench.sh plan", "benchmark, never run by tests"),
    ("scripts/bench.sh gradient", "benchmark, never run by tests"),
    ("scripts/bench.sh slurm", "benchmark, never run by tests"),
    ("scripts/bench.sh ess", "benchmark, never run by tests"),
    (
        "scripts/bench-peers.sh",
        "benchmark against JAX/BlackJAX, never run by tests",
    ),
];

/// How a line that is neither lambda-hat nor a script is exercised.
#[derive(Clone, Copy)]
enum Other {
    /// Run with `sh -c` in the test folder (HOME points into it).
    Shell,
    /// Not run (too slow or recursive); the check named here is made instead.
    CargoInstall,
    ThisTest,
    /// A `cargo bench` target: must be declared in Cargo.toml with its source in benches/.
    Bench(&'static str),
    /// An integration test run by hand (longer than CI runs it): its source must be in tests/.
    Test(&'static str),
}

const OTHER_LINES: &[(&str, Other)] = &[
    ("cargo install --path .", Other::CargoInstall),
    (
        "mkdir -p ~/.config/lambda-hat && cp -r profiles/slurm ~/.config/lambda-hat/mycluster",
        Other::Shell,
    ),
    (
        "python3 tests/python/analyze_sweep.py runs results.csv",
        Other::Shell,
    ),
    ("cargo test --test readme", Other::ThisTest),
    ("cargo bench --bench hmc", Other::Bench("hmc")),
    (
        "LAMBDA_HAT_FUZZ_SECONDS=60 cargo test --release --test fuzz -- --nocapture",
        Other::Test("fuzz"),
    ),
];

const SUBCOMMANDS: &[&str] = &[
    "worker", "results", "report", "promote", "clean", "status", "cancel", "validate", "help",
];

// ------------------------------------------------------------------------------------------
// README parsing

#[derive(Debug)]
enum Block {
    /// Command lines of a bash/sh block, continuation lines joined, with their README line.
    Shell(Vec<(usize, String)>),
    Python(usize, String),
    /// A YAML block: an experiments file or a fragment of one.
    Yaml(usize, String),
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = readme.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let info = info.trim();
        let mut body = Vec::new();
        for (j, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push((j + 1, l.to_string()));
        }
        match info {
            "bash" | "sh" | "shell" | "console" => out.push(Block::Shell(command_lines(&body))),
            "python" | "py" | "yaml" | "yml" => {
                let text = body
                    .iter()
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
                out.push(if info.starts_with('p') {
                    Block::Python(i + 1, text)
                } else {
                    Block::Yaml(i + 1, text)
                });
            }
            _ => {}
        }
    }
    out
}

fn command_lines(body: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in body {
        let line = raw.trim();
        let (start, mut text) = match pending.take() {
            Some((s, t)) => (s, format!("{t} {line}")),
            None => (*n, line.to_string()),
        };
        if let Some(stripped) = text.strip_suffix('\\') {
            text = stripped.trim_end().to_string();
            pending = Some((start, text));
            continue;
        }
        let text = strip_comment(&text).trim().to_string();
        if !text.is_empty() {
            out.push((start, text));
        }
    }
    if let Some(p) = pending {
        out.push(p);
    }
    out
}

/// Drops a `#` comment that starts a word outside quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

/// A word of a command line and whether any part of it was quoted.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    quoted: bool,
}

/// POSIX-shell-like splitting of a plain command: quotes and backslashes, nothing else.
fn split_words(line: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut cur: Option<Word> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
            }
            '\'' | '"' => {
                let w = cur.get_or_insert(Word {
                    text: String::new(),
                    quoted: false,
                });
                w.quoted = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e) => w.text.push(e),
                            None => return Err("unterminated escape".into()),
                        },
                        Some('$' | '`') if c == '"' => {
                            return Err("shell expansion inside double quotes".into());
                        }
                        Some(x) => w.text.push(x),
                        None => return Err(format!("unterminated {c} quote")),
                    }
                }
            }
            '\\' => {
                let e = chars.next().ok_or("trailing backslash")?;
                cur.get_or_insert(Word {
                    text: String::new(),
                    quoted: true,
                })
                .text
                .push(e);
            }
            '|' | '&' | ';' | '<' | '>' | '$' | '`' | '(' | ')' => {
                return Err(format!("shell syntax `{c}` is not a plain command"));
            }
            c => cur
                .get_or_insert(Word {
                    text: String::new(),
                    quoted: false,
                })
                .text
                .push(c),
        }
    }
    if let Some(w) = cur.take() {
        words.push(w);
    }
    Ok(words)
}

// ------------------------------------------------------------------------------------------
// IDs: the README shows the real demo's IDs; the test folder has the tiny demo's.

/// Output paths in a dry run, in order.
fn dry_run_outputs(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("output: "))
        .map(str::to_string)
        .collect()
}

/// `tgt_…` and `run_…` IDs of each output path, in order of first appearance.
fn ids_in_order(outputs: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut targets, mut runs) = (Vec::new(), Vec::new());
    for o in outputs {
        for part in o.split('/') {
            if is_target_id(part) && !targets.contains(&part.to_string()) {
                targets.push(part.to_string());
            }
            if is_run_id(part) && !runs.contains(&part.to_string()) {
                runs.push(part.to_string());
            }
        }
    }
    (targets, runs)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_target_id(s: &str) -> bool {
    s.strip_prefix("tgt_").is_some_and(|h| is_hex(h, 12))
}

fn is_run_id(s: &str) -> bool {
    s.strip_prefix("run_")
        .and_then(|r| r.rsplit_once('_'))
        .is_some_and(|(name, h)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase()) && is_hex(h, 8)
        })
}

/// Every ID-looking piece of `text` (`tgt_` + 12 hex, `run_<name>_` + 8 hex).
fn ids_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for (i, _) in text.match_indices("tgt_") {
        let end = i + 16;
        if end <= text.len() && is_target_id(&text[i..end]) {
            out.push(text[i..end].to_string());
        }
    }
    for (i, _) in text.match_indices("run_") {
        let mut j = i + 4;
        while j < bytes.len() && bytes[j].is_ascii_lowercase() {
            j += 1;
        }
        let end = j + 9;
        if j > i + 4 && end <= text.len() && is_run_id(&text[i..end]) {
            out.push(text[i..end].to_string());
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// The test folder

/// Copies `from` (if it exists) to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    if !from.is_dir() {
        return;
    }
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

struct World {
    dir: tempfile::TempDir,
    /// Real demo ID → tiny demo ID.
    ids: HashMap<String, String>,
    log: Vec<String>,
}

impl World {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.path())
            .env("HOME", self.home())
            .env_remove("RUST_LOG")
            .env_remove("LAMBDA_HAT_THREADS");
        cmd
    }

    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(ROOT);
        copy_dir(&root.join("config"), &dir.path().join("config"));
        copy_dir(&root.join("profiles"), &dir.path().join("profiles"));
        copy_dir(&root.join("tests/python"), &dir.path().join("tests/python"));
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let mut world = World {
            dir,
            ids: HashMap::new(),
            log: Vec::new(),
        };

        // The real demo's jobs, in plan order, planned from the repository's own file.
        let demo = world
            .command(BIN)
            .args(["-n", "--configfile"])
            .arg(root.join("config/experiments.yaml"))
            .output()
            .unwrap();
        assert!(demo.status.success(), "{}", describe(&demo));
        let (demo_t, demo_r) = ids_in_order(&dry_run_outputs(&stdout(&demo)));

        std::fs::write(
            world.path().join("config/experiments.yaml"),
            TINY_DEMO.trim_start(),
        )
        .unwrap();
        let tiny = world.command(BIN).arg("-n").output().unwrap();
        assert!(tiny.status.success(), "{}", describe(&tiny));
        let (tiny_t, tiny_r) = ids_in_order(&dry_run_outputs(&stdout(&tiny)));
        assert_eq!(
            (demo_t.len(), demo_r.len()),
            (tiny_t.len(), tiny_r.len()),
            "TINY_DEMO must have the shape of config/experiments.yaml (same targets × samplers)"
        );
        for (a, b) in demo_t.iter().zip(&tiny_t).chain(demo_r.iter().zip(&tiny_r)) {
            world.ids.insert(a.clone(), b.clone());
        }

        // A finished store, as after the README's first command.
        let run = world.command(BIN).args(["-j", "2"]).output().unwrap();
        assert!(run.status.success(), "{}", describe(&run));
        world
    }

    /// Replaces the real demo's IDs in `text` by the tiny demo's; an unknown ID is an error.
    fn map_ids(&self, text: &str) -> Result<String, String> {
        let mut out = text.to_string();
        for id in ids_in(text) {
            let tiny = self.ids.get(&id).ok_or_else(|| {
                format!("`{id}` is not an ID of the demo sweep (config/experiments.yaml)")
            })?;
            out = out.replace(&id, tiny);
        }
        Ok(out)
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ------------------------------------------------------------------------------------------
// Checking one line

/// Runs one lambda-hat command line (program name already removed).
fn check_binary(world: &mut World, program: &str, words: &[Word]) -> Result<(), String> {
    let mut args: Vec<String> = Vec::new();
    for w in words {
        if !w.quoted && w.text.contains(['*', '?', '[']) {
            return Err(format!(
                "unquoted glob `{}`: a shell would expand it; quote it",
                w.text
            ));
        }
        let text = match w.text.strip_prefix("~/") {
            Some(rest) if !w.quoted => world.home().join(rest).display().to_string(),
            _ => w.text.clone(),
        };
        args.push(world.map_ids(&text)?);
    }
    let subcommand = args
        .iter()
        .find(|a| SUBCOMMANDS.contains(&a.as_str()))
        .cloned();
    let mut note = "run";
    if subcommand.as_deref() == Some("validate") && !args.iter().any(|a| a == "--cases") {
        args.push("--help".into());
        note = "parse only";
    }
    if subcommand.is_none() && program == BIN {
        let has = |f: &str| args.iter().any(|a| a == f);
        let value_of = |f: &str| {
            args.iter()
                .position(|a| a == f)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let remote = has("--profile")
            || value_of("--executor").as_deref() == Some("slurm")
            || has("--detach");
        let other_sweep = value_of("--configfile")
            .or_else(|| value_of("--configfiles"))
            .is_some_and(|f| f != "config/experiments.yaml");
        let previews = ["-n", "--dry-run", "--dryrun", "-S", "--summary", "-D"]
            .iter()
            .any(|f| has(f))
            || has("--detailed-summary");
        if (remote || other_sweep) && !previews {
            args.push("-n".into());
            note = "run with -n";
        }
    }
    let started = Instant::now();
    let mut cmd = world.command(program);
    cmd.args(&args);
    let out = cmd.output().map_err(|e| format!("cannot run: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || err.contains("panicked") {
        return Err(format!(
            "`{} {}` failed: {}",
            program,
            args.join(" "),
            describe(&out)
        ));
    }
    if note == "parse only" && !stdout(&out).contains("Usage: lambda-hat validate") {
        return Err(format!(
            "`{} {}` did not print the help of `lambda-hat validate`: the binary has no such subcommand",
            program,
            args.join(" ")
        ));
    }
    world.log.push(format!(
        "{note:<12} {:>6.2} s  {} {}",
        started.elapsed().as_secs_f64(),
        Path::new(program).file_name().unwrap().to_string_lossy(),
        args.join(" ")
    ));
    Ok(())
}

fn check_script(line: &str) -> Result<(), String> {
    let Some((_, how)) = SCRIPT_LINES.iter().find(|(l, _)| *l == line) else {
        return Err(format!(
            "script line not in SCRIPT_LINES of tests/readme.rs (add it with how CI exercises it): {line}"
        ));
    };
    let mut parts = line.split_whitespace();
    let script = Path::new(ROOT).join(parts.next().unwrap());
    let meta = std::fs::metadata(&script).map_err(|e| format!("{}: {e}", script.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("{} is not executable", script.display()));
        }
    }
    let text = std::fs::read_to_string(&script).unwrap();
    for arg in parts {
        let label = format!("{arg})");
        if !text.lines().any(|l| l.trim_start().starts_with(&label)) {
            return Err(format!(
                "{} has no `{label}` case for the README's argument",
                script.display()
            ));
        }
    }
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).unwrap();
    let test_sh = std::fs::read_to_string(Path::new(ROOT).join("scripts/test.sh")).unwrap();
    if how.starts_with(".ci/run runs it") && !ci.contains(line) {
        return Err(format!(".ci/run does not run `{line}`"));
    }
    if how.starts_with("scripts/test.sh runs it")
        && !test_sh.contains(line.trim_start_matches("scripts/"))
    {
        return Err(format!("scripts/test.sh does not run `{line}`"));
    }
    if line.starts_with("scripts/bench.sh slurm")
        && !Path::new(ROOT).join("scripts/bench-slurm.sh").is_file()
    {
        return Err("scripts/bench.sh slurm needs scripts/bench-slurm.sh, which is missing".into());
    }
    Ok(())
}

fn check_other(world: &mut World, line: &str) -> Result<(), String> {
    let Some((_, how)) = OTHER_LINES.iter().find(|(l, _)| *l == line) else {
        return Err(format!(
            "cannot classify this README command (not lambda-hat, cargo run, a script, or in OTHER_LINES of tests/readme.rs): {line}"
        ));
    };
    match how {
        Other::Shell => {
            let out = world
                .command("sh")
                .arg("-c")
                .arg(line)
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("`{line}` failed: {}", describe(&out)));
            }
            world.log.push(format!("sh -c        {line}"));
        }
        Other::CargoInstall => {
            let toml = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
            if !toml.contains("name = \"lambda-hat\"") {
                return Err("Cargo.toml does not define the binary lambda-hat".into());
            }
        }
        Other::Bench(name) => {
            let toml = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
            let declared = toml.contains(&format!("[[bench]]\nname = \"{name}\""));
            if !declared || !Path::new(ROOT).join(format!("benches/{name}.rs")).is_file() {
                return Err(format!(
                    "no bench target `{name}` in Cargo.toml and benches/"
                ));
            }
        }
        Other::ThisTest => {
            if !Path::new(ROOT).join("tests/readme.rs").is_file() {
                return Err("tests/readme.rs is missing".into());
            }
        }
        Other::Test(name) => {
            if !Path::new(ROOT).join(format!("tests/{name}.rs")).is_file() {
                return Err(format!("no integration test tests/{name}.rs"));
            }
        }
    }
    Ok(())
}

fn check_line(world: &mut World, line: &str) -> Result<(), String> {
    if line.starts_with("scripts/") {
        return check_script(line);
    }
    if OTHER_LINES.iter().any(|(l, _)| *l == line) {
        return check_other(world, line);
    }
    let words = split_words(line)?;
    let first = words.first().map(|w| w.text.as_str()).unwrap_or("");
    match first {
        "lambda-hat" => check_binary(world, BIN, &words[1..]),
        "lambda-hat-promote" => check_binary(world, PROMOTE_BIN, &words[1..]),
        "cargo"
            if line.starts_with("cargo run --release -- ") || line == "cargo run --release --" =>
        {
            check_binary(world, BIN, &words[4..])
        }
        _ => check_other(world, line),
    }
}

/// A YAML block with `targets:` must plan (`-n`); one without `samplers:` is a fragment and gets
/// `samplers: []`. The block introduced as "The demo" must be `config/experiments.yaml`.
fn check_yaml(world: &mut World, n: usize, text: &str) -> Result<(), String> {
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let Some(map) = value.as_mapping() else {
        return Ok(());
    };
    if !map.contains_key("targets") {
        return Ok(());
    }
    let demo: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("config/experiments.yaml")).unwrap(),
    )
    .unwrap();
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let intro = readme
        .lines()
        .take(n.saturating_sub(1))
        .last()
        .unwrap_or("");
    let intro_prev = readme
        .lines()
        .take(n.saturating_sub(2))
        .last()
        .unwrap_or("");
    if (intro.contains("The demo") || intro_prev.contains("The demo")) && value != demo {
        return Err("the block shown as the demo differs from config/experiments.yaml".into());
    }
    let mut text = text.to_string();
    if !map.contains_key("samplers") {
        text.push_str("\nsamplers: []\n");
    }
    let rel = format!("config/readme_block_{n}.yaml");
    std::fs::write(world.path().join(&rel), text).unwrap();
    let out = world
        .command(BIN)
        .args(["-n", "-q", "--configfile", &rel])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("does not plan: {}", describe(&out)));
    }
    world.log.push(format!("yaml -n      README.md:{n}"));
    Ok(())
}

// ------------------------------------------------------------------------------------------

#[test]
fn every_readme_command_works() {
    let started = Instant::now();
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let blocks = blocks(&readme);
    assert!(
        blocks
            .iter()
            .any(|b| matches!(b, Block::Shell(l) if !l.is_empty())),
        "README.md has no bash blocks"
    );
    // The quick start: the README starts with the demo, its results, then the tests.
    let first: Vec<&str> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Shell(lines) => Some(lines.iter().map(|(_, l)| l.as_str())),
            Block::Python(..) | Block::Yaml(..) => None,
        })
        .flatten()
        .take(3)
        .collect();
    assert_eq!(
        first,
        [
            "cargo run --release -- -j 2",
            "cargo run --release -- results",
            "scripts/test.sh"
        ],
        "README must start with the demo, its results and the test command"
    );

    let mut world = World::new();
    let mut failures = Vec::new();
    let mut used_other: Vec<&str> = Vec::new();
    for block in &blocks {
        match block {
            Block::Shell(lines) => {
                for (n, line) in lines {
                    if let Some((l, _)) = OTHER_LINES.iter().find(|(l, _)| l == line) {
                        used_other.push(l);
                    }
                    if let Some((l, _)) = SCRIPT_LINES.iter().find(|(l, _)| l == line) {
                        used_other.push(l);
                    }
                    if let Err(e) = check_line(&mut world, line) {
                        failures.push(format!("README.md:{n}: {line}\n    {e}"));
                    }
                }
            }
            Block::Yaml(n, text) => {
                if let Err(e) = check_yaml(&mut world, *n, text) {
                    failures.push(format!("README.md:{n}: yaml block\n    {e}"));
                }
            }
            Block::Python(n, code) => {
                let code = match world.map_ids(code) {
                    Ok(c) => c,
                    Err(e) => {
                        failures.push(format!("README.md:{n}: python block\n    {e}"));
                        continue;
                    }
                };
                let file = world.path().join(format!("readme_block_{n}.py"));
                std::fs::write(&file, code).unwrap();
                let t = Instant::now();
                match world.command("python3").arg(&file).output() {
                    Ok(out) if out.status.success() => world.log.push(format!(
                        "python3      {:>6.2} s  README.md:{n}",
                        t.elapsed().as_secs_f64()
                    )),
                    Ok(out) => failures.push(format!(
                        "README.md:{n}: python block failed (numpy, pandas and arviz are installed by scripts/test.sh): {}",
                        describe(&out)
                    )),
                    Err(e) => failures.push(format!("README.md:{n}: cannot run python3: {e}")),
                }
            }
        }
    }
    let listed = OTHER_LINES
        .iter()
        .map(|(l, _)| *l)
        .chain(SCRIPT_LINES.iter().map(|(l, _)| *l));
    for l in listed {
        if !used_other.contains(&l) {
            failures.push(format!(
                "tests/readme.rs lists `{l}`, which README.md no longer shows: remove it"
            ));
        }
    }
    eprintln!("{}", world.log.join("\n"));
    eprintln!("README check: {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        failures.is_empty(),
        "{} README command(s) do not work:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_classifier_refuses_what_it_cannot_check() {
    assert!(split_words("lambda-hat results | head").is_err());
    assert!(split_words("lambda-hat results > out.csv").is_err());
    assert!(split_words("lambda-hat -n && lambda-hat -j 2").is_err());
    assert!(split_words("lambda-hat --configfile $HOME/x.yaml").is_err());
    let w = split_words(r#"lambda-hat "runs/targets/*/meta.json" -j 4 # comment"#).unwrap();
    assert_eq!(w[1].text, "runs/targets/*/meta.json");
    assert!(w[1].quoted);
    assert_eq!(
        strip_comment("lambda-hat -n   # preview"),
        "lambda-hat -n   "
    );
    assert_eq!(strip_comment("lambda-hat \"a#b\""), "lambda-hat \"a#b\"");
    assert_eq!(
        ids_in("runs/targets/tgt_09333a1918b2/run_hmc_2c691ab6/analysis.json"),
        ["tgt_09333a1918b2", "run_hmc_2c691ab6"]
    );
    assert!(ids_in("run_*/analysis.json tgt_abc").is_empty());
    let b = blocks("```bash\nlambda-hat -n \\\n  -q\n# c\n\n```\n```python\nprint(1)\n```\n");
    assert!(matches!(&b[0], Block::Shell(l) if l == &vec![(2, "lambda-hat -n -q".to_string())]));
    assert!(matches!(&b[1], Block::Python(_, c) if c == "print(1)"));
}
