//! sbatch scripts: rendered from the Tera templates (`templates/*.tera`, or the profile's
//! `sbatch-template` / `sbatch-array-template`) and saved under `<store>/.lambda-hat/slurm/`,
//! so a user can read exactly what was submitted and `sbatch` it again by hand.
//!
//! Input: a [`Script`] (job name, log path, validated flags, worker command, spec path or task
//! list). Output: the script text ([`Templates::render`]) and files on disk ([`save`]). Every
//! value is shell-quoted here or validated in [`super::flags`]; the templates insert them
//! verbatim (autoescape off, since HTML escaping would corrupt shell text).

use std::path::{Path, PathBuf};

use super::flags::shell_quote;

/// The built-in templates, compiled into the binary so it works from any directory.
pub const SINGLE_TEMPLATE: &str = include_str!("../../../templates/sbatch.sh.tera");
pub const ARRAY_TEMPLATE: &str = include_str!("../../../templates/sbatch-array.sh.tera");

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
}

/// Template sources for single jobs and arrays.
#[derive(Debug, Clone)]
pub struct Templates {
    pub single: String,
    pub array: String,
    /// Names for messages (file paths or "built-in").
    pub single_name: String,
    pub array_name: String,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            single: SINGLE_TEMPLATE.into(),
            array: ARRAY_TEMPLATE.into(),
            single_name: "sbatch.sh.tera (built-in)".into(),
            array_name: "sbatch-array.sh.tera (built-in)".into(),
        }
    }
}

/// What one sbatch submission runs: one job, or an array whose task i runs task_list line i+1.
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
    Single {
        spec: &'a Path,
    },
    Array {
        task_list: &'a Path,
        array_spec: &'a str,
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
        Ok(t)
    }

    /// Renders `script` with the single or the array template.
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
            Body::Single { spec } => {
                ctx.insert("spec_path", &q(spec));
                (&self.single, &self.single_name)
            }
            Body::Array {
                task_list,
                array_spec,
            } => {
                ctx.insert("task_list_path", &q(task_list));
                ctx.insert("array_spec", array_spec);
                (&self.array, &self.array_name)
            }
        };
        tera::Tera::one_off(template, &ctx, false).map_err(|e| ScriptError::Render {
            which: which.clone(),
            message: error_chain(&e),
        })
    }

    /// Renders both templates with sample values, so a broken custom template is reported at
    /// plan time, before anything is submitted.
    pub fn check(&self) -> Result<(), ScriptError> {
        let p = Path::new("/x");
        let base = Script {
            job_name: "check",
            log_path: p,
            flags: &[],
            worker_command: &["lambda-hat".to_string()],
            subcommand: "build-target",
            body: Body::Single { spec: p },
        };
        self.render(&base)?;
        self.render(&Script {
            body: Body::Array {
                task_list: p,
                array_spec: "0-1%1",
            },
            ..base
        })?;
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

/// The task list of an array: one spec path per line, line 1 = task 0.
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
