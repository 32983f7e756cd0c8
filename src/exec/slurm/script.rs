//! sbatch scripts: rendered from the Tera templates (`templates/*.tera`, or the profile's
//! `sbatch-template` / `sbatch-array-template` / `sbatch-bundle-template`) and saved under
//! `<store>/.lambda-hat/slurm/`, so a user can read exactly what was submitted and `sbatch` it
//! again by hand.
//!
//! Input: a [`Script`] (job name, log path, validated flags, worker command, spec path, task
//! list or bundle list). Output: the script text ([`Templates::render`]) and files on disk ([`save`]). Every
//! value is shell-quoted here or validated in [`super::flags`]; the templates insert them
//! verbatim (autoescape off, since HTML escaping would corrupt shell text).

use std::path::{Path, PathBuf};

use super::flags::shell_quote;

/// The built-in templates, compiled into the binary so it works from any directory.
pub const SINGLE_TEMPLATE: &str = include_str!("../../../templates/sbatch.sh.tera");
pub const ARRAY_TEMPLATE: &str = include_str!("../../../templates/sbatch-array.sh.tera");
pub const BUNDLE_TEMPLATE: &str = include_str!("../../../templates/sbatch-bundle.sh.tera");

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error(
        "cannot render the sbatch template {which}: {message}\n  Check the template's syntax (Tera) and that it only uses the variables documented at the top of templates/{which}."
    )]
    Render { which: String, message: String },
    #[error("cannot read the sbatch template {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "path {0:?} contains a newline; lambda-hat cannot pass it to a SLURM array task list. Use a store_root without newlines."
    )]
    Newline(String),
    #[error(
        "path {0:?} contains a tab or another control character; lambda-hat cannot pass it to a SLURM bundle list. Use a store_root without control characters."
    )]
    ControlCharacter(String),
    #[error(
        "the SLURM log directory {path:?} contains {what}, which {why}.\n  Move the store (store_root) to a path without it; the path is absolute, so the working directory counts too."
    )]
    UnsafeLogDir {
        path: String,
        what: String,
        why: &'static str,
    },
}

/// Checks that `dir` (absolute) can be the directory of an `#SBATCH --output` path.
///
/// Shell quoting cannot protect an `#SBATCH` line: sbatch reads those lines itself, a line
/// ends at the first newline (what follows would run as a command, and sbatch stops reading
/// directives there), and SLURM expands `%` patterns in the output path (a `\` turns that
/// expansion off for the whole path). So a directory that holds a control character, `%`,
/// `\` or a quote is refused, before anything is submitted, instead of being encoded.
pub fn check_log_dir(dir: &Path) -> Result<(), ScriptError> {
    let bad = |what: String, why: &'static str| ScriptError::UnsafeLogDir {
        path: dir.to_string_lossy().into_owned(),
        what,
        why,
    };
    let Some(text) = dir.to_str() else {
        return Err(bad(
            "bytes that are not UTF-8".into(),
            "an #SBATCH line cannot carry exactly",
        ));
    };
    for c in text.chars() {
        let why = match c {
            c if c.is_control() => "would end the #SBATCH line early or reach the terminal raw",
            '%' => "SLURM expands in log paths (%j, %u, ...)",
            '\\' => "makes SLURM stop expanding the job id in log paths",
            '\'' | '"' => "sbatch strips from #SBATCH values",
            _ => continue,
        };
        return Err(bad(format!("{:?}", c), why));
    }
    Ok(())
}

/// Template sources for single jobs, arrays and bundles.
#[derive(Debug, Clone)]
pub struct Templates {
    pub single: String,
    pub array: String,
    pub bundle: String,
    /// Names for messages (file paths or "built-in").
    pub single_name: String,
    pub array_name: String,
    pub bundle_name: String,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            single: SINGLE_TEMPLATE.into(),
            array: ARRAY_TEMPLATE.into(),
            bundle: BUNDLE_TEMPLATE.into(),
            single_name: "sbatch.sh.tera (built-in)".into(),
            array_name: "sbatch-array.sh.tera (built-in)".into(),
            bundle_name: "sbatch-bundle.sh.tera (built-in)".into(),
        }
    }
}

/// What one sbatch submission runs: one job, an array whose task i runs task_list line i+1, or
/// bundles (one per array task, or one alone) whose members the bundle list names.
#[derive(Debug, Clone)]
pub struct Script<'a> {
    pub job_name: &'a str,
    /// SLURM's `--output` (may contain `%j`, or `%A`/`%a` for arrays).
    pub log_path: &'a Path,
    /// Validated `(flag, quoted value)` pairs from [`super::flags::sbatch_flags`].
    pub flags: &'a [(String, String)],
    pub worker_command: &'a [String],
    /// `build-target` or `run-sampler` (from [`crate::plan::Rule::worker_subcommand`]).
    pub subcommand: &'static str,
    pub body: Body<'a>,
}

#[derive(Debug, Clone)]
pub enum Body<'a> {
    /// `benchmark`: where the worker records what it used (crate::store::benchmark).
    Single { spec: &'a Path, benchmark: &'a Path },
    /// `benchmark_list`: task i's benchmark path on line i+1, like the task list's spec paths.
    Array {
        task_list: &'a Path,
        benchmark_list: &'a Path,
        array_spec: &'a str,
    },
    /// `array_spec` is `None` for a single SLURM job running one bundle (task 0 of the list).
    Bundle {
        bundle_list: &'a Path,
        array_spec: Option<&'a str>,
    },
}

fn q(p: &Path) -> String {
    shell_quote(&p.to_string_lossy())
}

impl Templates {
    /// Loads the profile's templates (paths relative to the profile directory), else built-ins.
    pub fn load(
        profile_dir: Option<&Path>,
        single: Option<&Path>,
        array: Option<&Path>,
        bundle: Option<&Path>,
    ) -> Result<Templates, ScriptError> {
        let mut t = Templates::default();
        let read = |p: &Path| -> Result<(String, String), ScriptError> {
            let path = match profile_dir {
                Some(dir) if p.is_relative() => dir.join(p),
                _ => p.to_path_buf(),
            };
            let text = std::fs::read_to_string(&path).map_err(|source| ScriptError::Read {
                path: path.clone(),
                source,
            })?;
            Ok((text, path.display().to_string()))
        };
        if let Some(p) = single {
            (t.single, t.single_name) = read(p)?;
        }
        if let Some(p) = array {
            (t.array, t.array_name) = read(p)?;
        }
        if let Some(p) = bundle {
            (t.bundle, t.bundle_name) = read(p)?;
        }
        Ok(t)
    }

    /// Renders `script` with the single, the array or the bundle template.
    pub fn render(&self, script: &Script) -> Result<String, ScriptError> {
        let mut ctx = tera::Context::new();
        ctx.insert("job_name", &shell_quote(script.job_name));
        ctx.insert("log_path", &q(script.log_path));
        ctx.insert("sbatch_flags", &script.flags);
        let worker: Vec<String> = script
            .worker_command
            .iter()
            .map(|w| shell_quote(w))
            .collect();
        ctx.insert("worker_command", &worker.join(" "));
        ctx.insert("subcommand", script.subcommand);
        let (template, which) = match &script.body {
            Body::Single { spec, benchmark } => {
                ctx.insert("spec_path", &q(spec));
                ctx.insert("benchmark_path", &q(benchmark));
                (&self.single, &self.single_name)
            }
            Body::Array {
                task_list,
                benchmark_list,
                array_spec,
            } => {
                ctx.insert("task_list_path", &q(task_list));
                ctx.insert("benchmark_list_path", &q(benchmark_list));
                ctx.insert("array_spec", array_spec);
                (&self.array, &self.array_name)
            }
            Body::Bundle {
                bundle_list,
                array_spec,
            } => {
                ctx.insert("bundle_list_path", &q(bundle_list));
                ctx.insert("array_spec", array_spec.unwrap_or(""));
                (&self.bundle, &self.bundle_name)
            }
        };
        tera::Tera::one_off(template, &ctx, false).map_err(|e| ScriptError::Render {
            which: which.clone(),
            message: error_chain(&e),
        })
    }

    /// Renders every template with sample values, so a broken custom template is reported at
    /// plan time, before anything is submitted.
    pub fn check(&self) -> Result<(), ScriptError> {
        let p = Path::new("/x");
        let base = Script {
            job_name: "check",
            log_path: p,
            flags: &[],
            worker_command: &["lambda-hat".to_string()],
            subcommand: "build-target",
            body: Body::Single {
                spec: p,
                benchmark: p,
            },
        };
        self.render(&base)?;
        self.render(&Script {
            body: Body::Array {
                task_list: p,
                benchmark_list: p,
                array_spec: "0-1%1",
            },
            ..base.clone()
        })?;
        for array_spec in [None, Some("0-1%1")] {
            self.render(&Script {
                subcommand: "run-sampler",
                body: Body::Bundle {
                    bundle_list: p,
                    array_spec,
                },
                ..base.clone()
            })?;
        }
        Ok(())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// The task list of an array: one spec path per line, line 1 = task 0 (the benchmark list too,
/// with benchmark paths).
pub fn task_list(specs: &[PathBuf]) -> Result<String, ScriptError> {
    let mut out = String::new();
    for s in specs {
        let s = s.to_string_lossy();
        if s.contains('\n') {
            return Err(ScriptError::Newline(s.into_owned()));
        }
        out.push_str(&s);
        out.push('\n');
    }
    Ok(out)
}

/// The last line the bundle script writes into a member's own log when the member's worker
/// exits non-zero, and the line it writes instead of running a member whose target's build
/// failed (`sbatch-bundle.sh.tera`; a test runs the script to keep the two in step).
pub(crate) const MEMBER_FAILED: &str = "lambda-hat: this bundle member failed with exit status ";
pub(crate) const MEMBER_NOT_RUN: &str =
    "lambda-hat: this bundle member was not run: its target's build failed";

/// Whether a bundle member's log (its tail) ends with one of the bundle script's lines for a
/// member that failed or was not run: either way its output will not appear however long one
/// waits.
pub fn bundle_member_ended_without_output(log_tail: &str) -> bool {
    last_line(log_tail).is_some_and(|last| last.trim_end() == MEMBER_NOT_RUN)
        || bundle_member_exit_status(log_tail).is_some()
}

/// The exit status in the bundle script's [`MEMBER_FAILED`] line, when that is the last line of
/// a member's log (its tail).
pub fn bundle_member_exit_status(log_tail: &str) -> Option<u32> {
    last_line(log_tail)?
        .strip_prefix(MEMBER_FAILED)?
        .trim()
        .parse()
        .ok()
}

/// The last 8 KiB of a log: SLURM appends its kill messages at the end, and the bundle script
/// its line for a member that failed.
pub fn log_tail(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(8192))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().rev().find(|l| !l.trim().is_empty())
}

/// Whether the job whose log is `log` never started: SLURM creates a job's log when it starts
/// and the controller removes any earlier one at submission, so no log means no start; a
/// bundle member skipped after its build failed has a log holding only [`MEMBER_NOT_RUN`].
/// A job that never started left no partial files, so it is not incomplete.
pub fn never_started(log: &Path) -> bool {
    match std::fs::metadata(log) {
        Err(_) => true,
        // The line alone is a few dozen bytes; a longer log is a worker's, and is not read.
        Ok(meta) if meta.len() >= 256 => false,
        Ok(_) => std::fs::read_to_string(log).is_ok_and(|text| text.trim_end() == MEMBER_NOT_RUN),
    }
}

/// One member of a bundle list: the array task that runs it (0 for a single SLURM job), the
/// worker subcommand it runs, its log file, its benchmark file (the worker measures itself into
/// it) and its spec.json.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub task: usize,
    /// `build-target` or `run-sampler` ([`crate::plan::Rule::worker_subcommand`]): a bundle
    /// may start with its target's build.
    pub subcommand: &'static str,
    pub log: PathBuf,
    pub benchmark: PathBuf,
    pub spec: PathBuf,
}

/// The bundle list: one member per line, `TASK<TAB>SUBCOMMAND<TAB>LOG<TAB>BENCHMARK<TAB>SPEC`,
/// in the order they run. bash's
/// `read` splits the line at tabs and a newline ends it, so a path holding a tab, a newline or
/// any other control character is refused rather than encoded (the store's log directory is
/// refused for them anyway, [`check_log_dir`]).
pub fn bundle_list(members: &[Member]) -> Result<String, ScriptError> {
    let mut out = String::new();
    for m in members {
        let (log, bench, spec) = (
            m.log.to_string_lossy(),
            m.benchmark.to_string_lossy(),
            m.spec.to_string_lossy(),
        );
        for p in [&log, &bench, &spec] {
            if p.chars().any(char::is_control) {
                return Err(ScriptError::ControlCharacter(p.to_string()));
            }
        }
        out.push_str(&format!(
            "{}\t{}\t{log}\t{bench}\t{spec}\n",
            m.task, m.subcommand
        ));
    }
    Ok(out)
}

/// Writes `text` to `path` atomically, executable, so `sbatch path` (or `bash path`) works.
pub fn save(path: &Path, text: &str) -> std::io::Result<()> {
    crate::store::write_atomic(path, text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_single_script_with_quoted_values() {
        let flags = vec![
            ("-p".to_string(), "'debug'".to_string()),
            ("--no-requeue".to_string(), String::new()),
        ];
        let worker = vec!["/opt/lambda hat/bin".to_string()];
        let text = Templates::default()
            .render(&Script {
                job_name: "lh-build_target-ab12",
                log_path: Path::new("/s/logs/build_target/tgt_1.log"),
                flags: &flags,
                worker_command: &worker,
                subcommand: "build-target",
                body: Body::Single {
                    spec: Path::new("/s/it's/spec.json"),
                    benchmark: Path::new("/s/benchmarks/build_target/tgt_1.tsv"),
                },
            })
            .unwrap();
        assert!(text.starts_with("#!/usr/bin/env bash\n"), "{text}");
        assert!(text.contains("#SBATCH --job-name='lh-build_target-ab12'\n"));
        assert!(text.contains("#SBATCH --output='/s/logs/build_target/tgt_1.log'\n"));
        assert!(text.contains("#SBATCH -p 'debug'\n#SBATCH --no-requeue\n"));
        assert!(
            text.contains(r"exec '/opt/lambda hat/bin' worker build-target '/s/it'\''s/spec.json'")
        );
        assert!(text.contains("LAMBDA_HAT_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\""));
        assert!(
            text.contains("export LAMBDA_HAT_BENCHMARK='/s/benchmarks/build_target/tgt_1.tsv'\n")
        );
    }

    #[test]
    fn renders_array_script_and_task_list() {
        let text = Templates::default()
            .render(&Script {
                job_name: "a",
                log_path: Path::new("/s/%A_%a.log"),
                flags: &[],
                worker_command: &["lh".to_string()],
                subcommand: "run-sampler",
                body: Body::Array {
                    task_list: Path::new("/s/t.tasks"),
                    benchmark_list: Path::new("/s/t.benchmarks"),
                    array_spec: "0-2%2",
                },
            })
            .unwrap();
        assert!(text.contains("#SBATCH --array=0-2%2\n"));
        assert!(text.contains("task_list='/s/t.tasks'"));
        assert!(text.contains("exec 'lh' worker run-sampler \"$spec_path\""));
        assert_eq!(
            task_list(&[
                PathBuf::from("/a/spec.json"),
                PathBuf::from("/b c/spec.json")
            ])
            .unwrap(),
            "/a/spec.json\n/b c/spec.json\n"
        );
        assert!(task_list(&[PathBuf::from("/a\nb")]).is_err());
    }

    #[test]
    fn log_dirs_sbatch_cannot_carry_are_refused_with_the_character_named() {
        assert!(
            check_log_dir(Path::new("/home/me/My Project/runs/.lambda-hat/slurm/logs")).is_ok()
        );
        for (dir, shown) in [
            ("/tmp/x\\'\ntouch /tmp/owned #/logs", "'\\\\'"),
            ("/tmp/x'\ntouch /tmp/owned #/logs", "'\\''"),
            ("/tmp/x\ntouch /tmp/owned #/logs", "'\\n'"),
            ("/tmp/100%/logs", "'%'"),
            ("/tmp/a\\b/logs", "'\\\\'"),
            ("/tmp/it's/logs", "'\\''"),
            ("/tmp/\u{1b}[31m/logs", "'\\u{1b}'"),
        ] {
            let e = check_log_dir(Path::new(dir)).unwrap_err().to_string();
            assert!(
                e.contains(shown) && e.contains("store_root"),
                "{dir:?}: {e}"
            );
            // The path is shown escaped: no raw control character reaches the terminal.
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }

    /// Splits one line into words the way bash and sbatch read the quoting the Rust side
    /// produces: '...' literal, \x outside quotes the character x, whitespace separates.
    fn words(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut in_word) = (Vec::new(), String::new(), false);
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    in_word = true;
                    for q in chars.by_ref() {
                        if q == '\'' {
                            break;
                        }
                        cur.push(q);
                    }
                }
                '\\' => {
                    in_word = true;
                    cur.extend(chars.next());
                }
                c if c == ' ' || c == '\t' => {
                    if in_word {
                        out.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                c => {
                    in_word = true;
                    cur.push(c);
                }
            }
        }
        if in_word {
            out.push(cur);
        }
        out
    }

    /// The `#SBATCH` lines sbatch would read: those before the first line that is neither a
    /// comment nor blank (sbatch stops there).
    fn directives(script: &str) -> Vec<&str> {
        script
            .lines()
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with('#'))
            .filter(|l| l.starts_with("#SBATCH"))
            .collect()
    }

    /// Runs `script` with bash, `exec` replaced by a function that prints its arguments
    /// (functions shadow builtins), and returns (status ok, stdout words, stderr).
    fn run_with_bash(script: &str, env: &[(&str, &str)]) -> (bool, Vec<String>, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.sh");
        std::fs::write(&path, script).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg("exec() { printf '%s\\0' \"${LAMBDA_HAT_BENCHMARK-unset}\" \"$@\"; }; source \"$0\"")
            .arg(&path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let argv = String::from_utf8_lossy(&out.stdout)
            .split_terminator('\0')
            .map(String::from)
            .collect();
        (
            out.status.success(),
            argv,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Path text a store could have: anything, with the characters that break scripts
    /// (quotes, backslashes, newlines, `%`, `$`, `;`, backticks) made frequent. No NUL: no
    /// Unix path or argument holds one.
    fn hostile() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[a-z /'\"\\\\%$;`\n\r\t()|&<>*?~#!{}=-]{0,24}",
            any::<String>().prop_map(|s| s.replace('\0', "")),
        ]
    }

    /// Store directories: half hostile (mostly refused), half made of characters the check lets
    /// through but a shell would act on (`$`, `;`, backticks, globs, `#`, spaces, non-ASCII), so
    /// the rendered scripts themselves are exercised.
    fn store_dir() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![hostile(), "[a-z $;`()|&<>*?~#!{}=é€-]{0,24}"]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// No store path, binary path or spec path adds a command or an `#SBATCH` directive:
        /// either the log directory is refused up front, or sbatch reads exactly the intended
        /// directives (the log path intact) and bash runs exactly one command, the worker, with
        /// exactly the intended arguments.
        #[test]
        fn no_input_adds_a_command(store in store_dir(), binary in hostile(), spec in hostile()) {
            let logs = Path::new("/store").join(&store).join("logs");
            if check_log_dir(&logs).is_err() {
                return Ok(());
            }
            let log = logs.join("%j.log");
            let spec = Path::new("/store").join(&store).join(&spec);
            let bench = Path::new("/store").join(&store).join("benchmarks/run_sampler/k.tsv");
            let worker = vec![format!("/opt/{binary}")];
            let flags = vec![("-p".to_string(), shell_quote("debug"))];
            let script = Script {
                job_name: "lh-run_sampler-ab12",
                log_path: &log,
                flags: &flags,
                worker_command: &worker,
                subcommand: "run-sampler",
                body: Body::Single { spec: &spec, benchmark: &bench },
            };
            let text = Templates::default().render(&script).unwrap();
            let d = directives(&text);
            proptest::prop_assert_eq!(d.len(), 3, "{}", text);
            proptest::prop_assert_eq!(words(d[1]), vec!["#SBATCH".to_string(), format!("--output={}", log.display())]);
            let (ok, argv, stderr) = run_with_bash(&text, &[]);
            proptest::prop_assert!(ok, "{}", stderr);
            let expected = vec![
                bench.to_string_lossy().into_owned(),
                worker[0].clone(),
                "worker".into(),
                "run-sampler".into(),
                spec.to_string_lossy().into_owned(),
            ];
            proptest::prop_assert_eq!(&argv, &expected);
            // Only the script's own line on stderr: nothing else ran and failed.
            proptest::prop_assert_eq!(stderr.lines().count(), 1, "{}", stderr);

            // The array script: the spec path comes from the task list, the rest as above.
            let tasks_dir = tempfile::tempdir().unwrap();
            let tasks = tasks_dir.path().join("t.tasks");
            let spec_line = spec.to_string_lossy().replace('\n', " ");
            std::fs::write(&tasks, format!("{spec_line}\n")).unwrap();
            let benchmarks = tasks_dir.path().join("t.benchmarks");
            let bench_line = bench.to_string_lossy().replace('\n', " ");
            std::fs::write(&benchmarks, format!("{bench_line}\n")).unwrap();
            let text = Templates::default()
                .render(&Script {
                    log_path: &logs.join("%A_%a.log"),
                    body: Body::Array { task_list: &tasks, benchmark_list: &benchmarks, array_spec: "0-0%1" },
                    ..script
                })
                .unwrap();
            proptest::prop_assert_eq!(directives(&text).len(), 4, "{}", text);
            let (ok, argv, stderr) = run_with_bash(&text, &[("SLURM_ARRAY_TASK_ID", "0")]);
            proptest::prop_assert!(ok, "{}", stderr);
            proptest::prop_assert_eq!(argv, vec![bench_line, worker[0].clone(), "worker".into(), "run-sampler".into(), spec_line]);
            proptest::prop_assert_eq!(stderr.lines().count(), 1, "{}", stderr);

            // The bundle script, single and array: the member paths come from the bundle list
            // (refused when they hold a control character), each member runs the worker with
            // exactly its spec, its benchmark path in the environment and its output in its log.
            let members: Vec<Member> = (0..2)
                .map(|m| Member {
                    task: 1,
                    subcommand: "run-sampler",
                    // A file name made of the hostile text, in a directory that exists.
                    log: tasks_dir.path().join(format!(
                        "{}.{m}.log",
                        store.replace('/', "_").chars().take(40).collect::<String>()
                    )),
                    benchmark: Path::new("/store").join(&store).join(format!("b{m}.tsv")),
                    spec: spec.join(m.to_string()),
                })
                .collect();
            let Ok(list) = bundle_list(&members) else {
                let any_control = members.iter().any(|m| {
                    [&m.log, &m.benchmark, &m.spec]
                        .iter()
                        .any(|p| p.to_string_lossy().chars().any(char::is_control))
                });
                proptest::prop_assert!(any_control);
                return Ok(());
            };
            let list_path = tasks_dir.path().join("b.bundles");
            std::fs::write(&list_path, format!("0\trun-sampler\t/nowhere/x.log\t/nowhere/b.tsv\t/nowhere/spec.json\n{list}")).unwrap();
            for array_spec in [None, Some("0-1%1")] {
                let text = Templates::default()
                    .render(&Script {
                        log_path: &logs.join("%A_%a.log"),
                        body: Body::Bundle { bundle_list: &list_path, array_spec },
                        ..script.clone()
                    })
                    .unwrap();
                let n = if array_spec.is_some() { 4 } else { 3 };
                proptest::prop_assert_eq!(directives(&text).len(), n, "{}", text);
                if array_spec.is_none() {
                    // The same body as the array's, run below (bash costs most of the time).
                    continue;
                }
                let (ok, calls, stderr) = run_bundle_with_bash(&text, "1");
                proptest::prop_assert!(ok, "{}", stderr);
                let expected: Vec<Vec<String>> = members
                    .iter()
                    .map(|m| {
                        vec![
                            m.benchmark.to_string_lossy().into_owned(),
                            worker[0].clone(),
                            "worker".into(),
                            "run-sampler".into(),
                            m.spec.to_string_lossy().into_owned(),
                        ]
                    })
                    .collect();
                proptest::prop_assert_eq!(&calls, &expected);
                for (m, call) in members.iter().zip(&calls) {
                    // What the worker printed went to its own log.
                    let log = std::fs::read_to_string(&m.log).unwrap();
                    proptest::prop_assert_eq!(&log, &format!("ran {}\n", call[4]));
                }
                // The bundle's line and one per member: nothing else ran and failed.
                proptest::prop_assert_eq!(stderr.lines().count(), 3, "{}", stderr);
            }
        }
    }

    /// Runs a bundle script as task `task` with bash, `exec` replaced by a function that
    /// records `$LAMBDA_HAT_BENCHMARK` and its arguments in a file and prints one line (to the
    /// member's log); returns (status ok, one argv per worker run, stderr).
    fn run_bundle_with_bash(script: &str, task: &str) -> (bool, Vec<Vec<String>>, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.sh");
        let record = dir.path().join("calls");
        std::fs::write(&path, script).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(
                "exec() { { printf '%s\\0' \"$LAMBDA_HAT_BENCHMARK\" \"$@\"; printf '\\n'; } >>\"$LH_RECORD\"; echo \"ran ${@: -1}\"; }; source \"$0\"",
            )
            .arg(&path)
            .env("LH_RECORD", &record)
            .env("SLURM_ARRAY_TASK_ID", task)
            .output()
            .unwrap();
        let calls = std::fs::read(&record).unwrap_or_default();
        let calls = String::from_utf8_lossy(&calls)
            .split_terminator("\0\n")
            .map(|c| c.split('\0').map(String::from).collect())
            .collect();
        (
            out.status.success(),
            calls,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Renders the built-in bundle script for a list of (subcommand, spec) members of task 0
    /// and runs it with bash, `exec` replaced by a function that prints its arguments and fails
    /// for specs named `fail*`. Returns (exit status, the workers' output, stderr).
    fn run_bundle(members: &[(&str, &str)]) -> (Option<i32>, String, String) {
        let (status, ran, stderr, _) = run_bundle_logs(members);
        (status, ran, stderr)
    }

    /// [`run_bundle`], with each member's own log (empty when it was not written).
    fn run_bundle_logs(members: &[(&str, &str)]) -> (Option<i32>, String, String, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let mut list = String::new();
        for (m, (sub, spec)) in members.iter().enumerate() {
            let log = dir.path().join(format!("{m}.log"));
            list.push_str(&format!("0\t{sub}\t{}\t/b{m}.tsv\t{spec}\n", log.display()));
        }
        let path = write_bundle_script(dir.path(), &list, None);
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(r#"exec() { echo "$@" >>"$LH_RAN"; [[ "${@: -1}" != fail* ]]; }; source "$0""#)
            .arg(&path)
            .env("LH_RAN", dir.path().join("ran"))
            .output()
            .unwrap();
        let ran = std::fs::read_to_string(dir.path().join("ran")).unwrap_or_default();
        let logs = (0..members.len())
            .map(|m| {
                std::fs::read_to_string(dir.path().join(format!("{m}.log"))).unwrap_or_default()
            })
            .collect();
        (
            out.status.code(),
            ran,
            String::from_utf8_lossy(&out.stderr).into_owned(),
            logs,
        )
    }

    #[test]
    fn a_bundles_log_names_its_slurm_job_as_squeue_does() {
        // An array task's own SLURM_JOB_ID (2306) is not what squeue, sacct or scancel show
        // for it (2304_1): the header gives that name first.
        let script = bundle_script_for_task_1();
        let header = |env: &[(&str, &str)]| {
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg("exec() { :; }; source \"$0\"")
                .arg(&script.1)
                .env_remove("SLURM_ARRAY_JOB_ID")
                .env_remove("SLURM_JOB_ID")
                .envs(env.iter().copied())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            stderr.lines().next().unwrap_or_default().to_string()
        };
        let array = header(&[
            ("SLURM_ARRAY_JOB_ID", "2304"),
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_JOB_ID", "2306"),
        ]);
        assert!(
            array.starts_with("lambda-hat: SLURM job 2304_1 (job id 2306) on "),
            "{array}"
        );
        let single = header(&[("SLURM_JOB_ID", "2310"), ("SLURM_ARRAY_TASK_ID", "1")]);
        assert!(
            single.starts_with("lambda-hat: SLURM job 2310 on "),
            "{single}"
        );
    }

    /// A rendered bundle script with one member in task 1; returns its directory (kept alive)
    /// and the script's path.
    fn bundle_script_for_task_1() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("m.log");
        let list = format!("1\trun-sampler\t{}\t/b.tsv\tr.json\n", log.display());
        let path = write_bundle_script(dir.path(), &list, Some("1"));
        (dir, path)
    }

    /// Writes the bundle list `list` and the built-in bundle script that reads it (an array when
    /// `array_spec` is given) into `dir`; returns the script's path.
    fn write_bundle_script(dir: &Path, list: &str, array_spec: Option<&str>) -> PathBuf {
        let list_path = dir.join("x.bundles");
        std::fs::write(&list_path, list).unwrap();
        let text = Templates::default()
            .render(&Script {
                job_name: "j",
                log_path: &dir.join(if array_spec.is_some() {
                    "%A_%a.log"
                } else {
                    "%j.log"
                }),
                flags: &[],
                worker_command: &["lh".to_string()],
                subcommand: "build-target",
                body: Body::Bundle {
                    bundle_list: &list_path,
                    array_spec,
                },
            })
            .unwrap();
        let path = dir.join("job.sh");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_failed_or_skipped_members_own_log_says_so_and_only_its_own() {
        let (status, _, stderr, logs) = run_bundle_logs(&[
            ("build-target", "t.json"),
            ("run-sampler", "fail-r1.json"),
            ("run-sampler", "r2.json"),
        ]);
        assert_eq!(status, Some(1), "{stderr}");
        let ended = |logs: &[String]| -> Vec<bool> {
            logs.iter()
                .map(|l| bundle_member_ended_without_output(l))
                .collect()
        };
        assert_eq!(ended(&logs), [false, true, false], "{logs:?}");
        let (_, _, stderr, logs) = run_bundle_logs(&[
            ("build-target", "fail-t.json"),
            ("run-sampler", "r1.json"),
            ("build-target", "t2.json"),
            ("run-sampler", "r2.json"),
        ]);
        assert_eq!(
            ended(&logs),
            [true, true, false, false],
            "{logs:?} {stderr}"
        );
        // The skipped member's log says it never started (cancel keeps no marker for it); the
        // failed build's does not.
        let dir = tempfile::tempdir().unwrap();
        let started: Vec<bool> = logs
            .iter()
            .enumerate()
            .map(|(m, text)| {
                // Every member here has a log (the script creates it, empty for a worker that
                // printed nothing); a missing log is a member that never started.
                let path = dir.path().join(format!("{m}.log"));
                std::fs::write(&path, text).unwrap();
                !never_started(&path)
            })
            .collect();
        assert_eq!(started, [true, false, true, true], "{logs:?}");
        assert!(never_started(&dir.path().join("missing.log")));
        // The worker's own last words come before the line, which stays last.
        assert!(bundle_member_ended_without_output(
            "error: no data\nlambda-hat: this bundle member failed with exit status 101\n\n"
        ));
        assert!(!bundle_member_ended_without_output(
            "lambda-hat: this bundle member failed with exit status 1\nstarted again\n"
        ));
        assert!(!bundle_member_ended_without_output(
            "lambda-hat: this bundle member failed with exit status x"
        ));
        assert!(!bundle_member_ended_without_output(""));
        // The status a failed member's line carries; none for the skip line or another last line.
        assert_eq!(
            bundle_member_exit_status(
                "error: no data\nlambda-hat: this bundle member failed with exit status 101\n\n"
            ),
            Some(101)
        );
        assert_eq!(bundle_member_exit_status(&logs[1]), None);
        assert_eq!(bundle_member_exit_status("ran r1.json\n"), None);
    }

    #[test]
    fn a_bundle_runs_each_member_with_its_own_subcommand() {
        let (status, ran, stderr) = run_bundle(&[
            ("build-target", "t.json"),
            ("run-sampler", "fail-r1.json"),
            ("run-sampler", "r2.json"),
        ]);
        assert_eq!(
            ran,
            "lh worker build-target t.json\nlh worker run-sampler fail-r1.json\nlh worker run-sampler r2.json\n"
        );
        // A failed run does not stop the others; the bundle reports it.
        assert_eq!(status, Some(1), "{stderr}");
        assert!(stderr.contains("1 of 3 member(s) failed"), "{stderr}");
    }

    #[test]
    fn a_failed_build_skips_the_rest_of_its_bundle() {
        let (status, ran, stderr) = run_bundle(&[
            ("build-target", "fail-t.json"),
            ("run-sampler", "r1.json"),
            ("run-sampler", "r2.json"),
        ]);
        assert_eq!(ran, "lh worker build-target fail-t.json\n");
        assert_eq!(status, Some(1), "{stderr}");
        assert_eq!(
            stderr.matches("not run: its target's build failed").count(),
            2,
            "{stderr}"
        );
    }

    #[test]
    fn a_failed_build_skips_only_its_own_targets_runs() {
        let (status, ran, stderr) = run_bundle(&[
            ("build-target", "fail-t1.json"),
            ("run-sampler", "t1-r1.json"),
            ("build-target", "t2.json"),
            ("run-sampler", "t2-r1.json"),
        ]);
        assert_eq!(
            ran,
            "lh worker build-target fail-t1.json\nlh worker build-target t2.json\nlh worker run-sampler t2-r1.json\n"
        );
        assert_eq!(status, Some(1), "{stderr}");
        assert_eq!(
            stderr.matches("not run: its target's build failed").count(),
            1,
            "{stderr}"
        );
    }

    #[test]
    fn a_bundle_list_with_an_unknown_subcommand_runs_nothing_after_it() {
        let (status, ran, stderr) = run_bundle(&[
            ("run-sampler; rm -rf /", "r1.json"),
            ("run-sampler", "r2.json"),
        ]);
        assert_eq!(ran, "");
        assert_eq!(status, Some(2), "{stderr}");
        assert!(
            stderr.contains("not build-target or run-sampler"),
            "{stderr}"
        );
    }

    #[test]
    fn broken_custom_template_is_reported_with_its_name() {
        let t = Templates {
            single: "{{ nosuchvar }}".into(),
            single_name: "my.tera".into(),
            ..Templates::default()
        };
        let e = t.check().unwrap_err().to_string();
        assert!(e.contains("my.tera") && e.contains("nosuchvar"), "{e}");
    }
}
