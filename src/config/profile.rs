//! Profiles: `profiles/NAME/config.yaml` (then `~/.config/lambda-hat/NAME/config.yaml`, or a path),
//! whose keys mirror the command-line flags, as Snakemake profiles do.
//!
//! Input: `--profile NAME|PATH`. Output: a [`Profile`] with every key typed and validated; the CLI
//! layers its own flags on top (the command line wins). An unknown key is an error that lists
//! the valid ones; an unknown profile lists every place that was searched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// Where the jobs of a sweep run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    /// Worker processes on this machine, as many at once as `--jobs` and `--cores` allow.
    #[default]
    Local,
    /// One SLURM job (or array task) per job, submitted with sbatch.
    Slurm,
}

/// `-j`/`--cores` and the profile's `jobs`/`cores`: a count of at least 1, or `all` for this
/// machine's CPU count (Snakemake's `--cores all`).
pub fn parse_count(value: &str) -> Result<usize, String> {
    if value == "all" {
        return Ok(std::thread::available_parallelism().map_or(1, |n| n.get()));
    }
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (or `all`)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "`{value}` is not a count: give a number of at least 1, or `all`"
        )),
    }
}

/// A profile's `jobs: 8` or `jobs: all` (what the command line accepts, [`parse_count`]).
fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Integer(i64),
        Float(f64),
        Text(String),
    }
    let text = match Option::<Raw>::deserialize(d)? {
        None => return Ok(None),
        Some(Raw::Integer(n)) => n.to_string(),
        Some(Raw::Float(x)) => x.to_string(),
        Some(Raw::Text(t)) => t,
    };
    parse_count(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The keys of a profile's config.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    pub executor: Option<Executor>,
    #[serde(default, deserialize_with = "count")]
    pub jobs: Option<usize>,
    #[serde(default, deserialize_with = "count")]
    pub cores: Option<usize>,
    /// `NAME: VALUE` map (or a list of `NAME=VALUE` strings).
    pub default_resources: Option<ResourceList>,
    /// `RULE: { NAME: VALUE }` (or a list of `RULE:NAME=VALUE` strings).
    pub set_resources: Option<RuleResources>,
    /// Global limits `NAME: INT`.
    pub resources: Option<ResourceList>,
    /// Also `restart-times`, Snakemake's name for it.
    #[serde(alias = "restart-times")]
    pub retries: Option<u32>,
    /// Print each job's worker command, as `-p` does.
    pub printshellcmds: Option<bool>,
    pub keep_going: Option<bool>,
    /// Seconds to wait for a finished job's marker file to appear (shared file systems lag).
    pub latency_wait: Option<u64>,
    pub rerun_incomplete: Option<bool>,
    pub quiet: Option<bool>,
    /// Tera template for single sbatch jobs (path relative to the profile directory).
    pub sbatch_template: Option<PathBuf>,
    /// Tera template for array sbatch jobs.
    pub sbatch_array_template: Option<PathBuf>,
    /// Command that runs lambda-hat on the compute nodes (default: this binary's absolute path).
    pub worker_command: Option<String>,
    /// Largest array submitted at once (SLURM's MaxArraySize bounds it too).
    pub max_array_size: Option<usize>,
    /// `%` throttle of array jobs (tasks running at once per array); default: `jobs`.
    pub array_throttle: Option<usize>,
    /// Submit runs sharing a target as one array job (default true).
    pub use_arrays: Option<bool>,
    /// Polling interval bounds in seconds.
    pub poll_min_interval: Option<f64>,
    pub poll_max_interval: Option<f64>,
    /// Extra sbatch arguments for every job (validated).
    pub slurm_extra: Option<String>,
    /// Multiply memory (OUT_OF_MEMORY) or runtime (TIMEOUT) by this on retry (default 2).
    pub retry_factor: Option<f64>,
    /// Most run_sampler jobs of one target run inside one SLURM job or array task.
    pub bundle_size: Option<BundleSize>,
    /// Tera template for bundles of run_sampler jobs.
    pub sbatch_bundle_template: Option<PathBuf>,
}

/// `bundle-size`: how many run_sampler jobs of one target one SLURM job (or array task) runs,
/// one after another. `auto` chooses from the jobs' expected durations so a bundle lasts about
/// a minute (`exec::slurm::bundle`). Written as a positive integer or `auto`, in the profile
/// and after `--bundle-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleSize {
    /// At most this many jobs per bundle; 1 is no bundling.
    Fixed(std::num::NonZeroUsize),
    Auto,
}

impl Default for BundleSize {
    fn default() -> Self {
        BundleSize::Fixed(std::num::NonZeroUsize::MIN)
    }
}

impl std::str::FromStr for BundleSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "auto" {
            return Ok(BundleSize::Auto);
        }
        s.parse::<std::num::NonZeroUsize>()
            .map(BundleSize::Fixed)
            .map_err(|_| {
                // {:?} escapes control characters, so the text is safe on a terminal.
                format!("bundle-size must be a positive integer or `auto`, not {s:?}")
            })
    }
}

impl<'de> Deserialize<'de> for BundleSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // An integer or a string: `bundle-size: 4`, `bundle-size: auto`, `bundle-size: "4"`.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        let text = match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("bundle-size must be a positive integer or `auto`")
        })? {
            Raw::Int(i) => i.to_string(),
            Raw::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Resources written either as a map or as a list of `NAME=VALUE` strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ResourceList {
    Map(BTreeMap<String, serde_yaml::Value>),
    List(Vec<String>),
}

/// Per-rule resources written either as a map of maps or as a list of `RULE:NAME=VALUE`
/// strings (the words of `--set-resources`, as Snakemake profiles write them).
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a map `RULE: {NAME: VALUE}` or a list of `RULE:NAME=VALUE` strings"
)]
pub enum RuleResources {
    Map(BTreeMap<String, BTreeMap<String, serde_yaml::Value>>),
    List(Vec<String>),
}

/// A profile and the directory it came from (templates are relative to it).
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    pub dir: PathBuf,
    pub profile: Profile,
}

/// Where `--profile name` is searched, in order.
pub fn candidates(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let as_path = Path::new(name);
    if name.contains('/') || as_path.is_absolute() {
        out.push(as_path.to_path_buf());
    }
    out.push(Path::new("profiles").join(name));
    if let Some(home) = std::env::var_os("HOME") {
        out.push(Path::new(&home).join(".config/lambda-hat").join(name));
    }
    out
}

/// The shipped profiles, built in so that `--profile slurm` works in any folder (as the
/// built-in presets do); a `profiles/NAME` on disk (a copy to edit) comes first.
const BUILTIN_PROFILES: [(&str, &str); 2] = [
    ("slurm", include_str!("../../profiles/slurm/config.yaml")),
    (
        "local-slurm",
        include_str!("../../profiles/local-slurm/config.yaml"),
    ),
];

fn parse_profile(file: &Path, text: &str) -> Result<Profile, ConfigError> {
    // A byte-order mark (Windows editors) is not content, as PyYAML reads it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(Profile::default());
    }
    let invalid = |key: String, message: String| ConfigError::Invalid {
        path: file.to_path_buf(),
        entry: "profile".into(),
        key,
        message,
    };
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| invalid("config.yaml".into(), e.to_string()))?;
    if let serde_yaml::Value::Mapping(m) = &value
        && m.contains_key("retries")
        && m.contains_key("restart-times")
    {
        return Err(invalid(
            "restart-times".into(),
            "is Snakemake's name for `retries`, which the profile also sets: keep one of them"
                .into(),
        ));
    }
    // Deserialized through serde_path_to_error so a message names its key (`jobs: 0` said only
    // "must be at least 1" before: the count's parser does not know which key it reads).
    let profile: Profile = serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        let key = if key.is_empty() || key == "." {
            "config.yaml".to_string()
        } else {
            key
        };
        invalid(key, e.into_inner().to_string())
    })?;
    if let Some(cmd) = &profile.worker_command {
        check_worker_command(cmd).map_err(|message| ConfigError::Invalid {
            path: file.to_path_buf(),
            entry: "profile".into(),
            key: "worker-command".into(),
            message,
        })?;
    }
    Ok(profile)
}

/// A `worker-command` is split at whitespace into words, each passed on as it is (and quoted
/// for the job script): an empty one would run whatever `worker` is on the node's PATH, and
/// quotes or backslashes, which a shell would remove, would stay in the words.
fn check_worker_command(cmd: &str) -> Result<(), String> {
    if cmd.trim().is_empty() {
        return Err(
            "is empty: give the lambda-hat binary's path on the compute nodes, or drop \
                    the key to use this binary's own path"
                .into(),
        );
    }
    if cmd.contains(['\'', '"', '`', '\\']) {
        return Err(format!(
            "`{cmd}` has quotes or backslashes, but the command is split at spaces without a \
             shell's quoting, so they would stay in the words: give a path without spaces or \
             quotes (a symbolic link to the binary, for example)"
        ));
    }
    Ok(())
}

pub fn load_profile(name: &str) -> Result<LoadedProfile, ConfigError> {
    load_from(name, &candidates(name))
}

/// [`load_profile`] searching `tried`, then the built-in profiles.
fn load_from(name: &str, tried: &[PathBuf]) -> Result<LoadedProfile, ConfigError> {
    for dir in tried {
        // Accept a direct path to a config.yaml too.
        let (dir, file) = if dir.is_file() {
            (
                dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
                dir.clone(),
            )
        } else {
            (dir.clone(), dir.join("config.yaml"))
        };
        if file.is_file() {
            let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read {
                path: file.clone(),
                source,
                hint: "check the profile file is readable".into(),
            })?;
            let profile = parse_profile(&file, &text)?;
            return Ok(LoadedProfile { dir, profile });
        }
    }
    if let Some((_, text)) = BUILTIN_PROFILES.iter().find(|(n, _)| *n == name) {
        let file = PathBuf::from(format!("<built-in profiles/{name}/config.yaml>"));
        // Its keys name no file, so its directory is only a base for paths it does not have.
        return Ok(LoadedProfile {
            dir: PathBuf::from("."),
            profile: parse_profile(&file, text)?,
        });
    }
    Err(ConfigError::Sweep {
        path: PathBuf::from(name),
        message: format!(
            "unknown profile; looked for config.yaml in: {}; built-in profiles: {}",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            BUILTIN_PROFILES.map(|(n, _)| n).join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Profile, String> {
        parse_profile(Path::new("p/config.yaml"), yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn jobs_and_cores_take_a_count_or_all_as_on_the_command_line() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let p = parse_profile(Path::new("p/config.yaml"), "\u{feff}jobs: all\ncores: 3\n").unwrap();
        assert_eq!((p.jobs, p.cores), (Some(cpus), Some(3)));
        for bad in ["jobs: 0", "jobs: many", "cores: -1"] {
            let e = parse_profile(Path::new("p/config.yaml"), bad)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("at least 1") || e.contains("not a count"),
                "{bad}: {e}"
            );
            // The message names the key: the count's parser alone does not know it.
            let key = bad.split(':').next().unwrap();
            assert!(e.contains(&format!("profile: {key}: ")), "{bad}: {e}");
        }
    }

    #[test]
    fn an_empty_or_quoted_worker_command_is_refused() {
        let check = |yaml: &str| parse_profile(Path::new("p/config.yaml"), yaml);
        for bad in ["worker-command: ''", "worker-command: '   '"] {
            let err = check(bad).unwrap_err().to_string();
            assert!(
                err.contains("worker-command") && err.contains("is empty"),
                "{err}"
            );
        }
        for bad in [
            r#"worker-command: "'/opt/my dir/lambda-hat' -v""#,
            r#"worker-command: '/opt/my\ dir/lambda-hat'"#,
        ] {
            let err = check(bad).unwrap_err().to_string();
            assert!(err.contains("quotes or backslashes"), "{bad}: {err}");
        }
        let ok = check("worker-command: /opt/lh/bin/lambda-hat -v").unwrap();
        assert_eq!(
            ok.worker_command.as_deref(),
            Some("/opt/lh/bin/lambda-hat -v")
        );
    }

    #[test]
    fn bundle_size_is_a_positive_integer_or_auto() {
        let k = |n: usize| BundleSize::Fixed(std::num::NonZeroUsize::new(n).unwrap());
        assert_eq!(parse("bundle-size: 4").unwrap().bundle_size, Some(k(4)));
        assert_eq!(parse("bundle-size: \"4\"").unwrap().bundle_size, Some(k(4)));
        assert_eq!(
            parse("bundle-size: auto").unwrap().bundle_size,
            Some(BundleSize::Auto)
        );
        assert_eq!(parse("jobs: 2").unwrap().bundle_size, None);
        assert_eq!(BundleSize::default(), k(1));
        assert_eq!("auto".parse::<BundleSize>(), Ok(BundleSize::Auto));
        assert_eq!("7".parse::<BundleSize>(), Ok(k(7)));
        for bad in ["0", "-1", "2.5", "many", "[1]", "\"\\e[31m\""] {
            let e = parse(&format!("bundle-size: {bad}")).unwrap_err();
            assert!(
                e.contains("bundle-size must be a positive integer or `auto`"),
                "{bad}: {e}"
            );
            assert!(!e.contains('\u{1b}'), "{e}");
        }
        let e = "lots".parse::<BundleSize>().unwrap_err();
        assert!(e.contains("\"lots\""), "{e}");
    }

    /// Snakemake's profile keys for the same things: `restart-times` is `retries`, and
    /// `set-resources` may be the flag's words; anything else there is one clear error.
    #[test]
    fn snakemake_profile_keys_are_read() {
        let p = parse("restart-times: 3\nprintshellcmds: true").unwrap();
        assert_eq!((p.retries, p.printshellcmds), (Some(3), Some(true)));
        let list = parse("set-resources: [\"run_sampler:mem_mb=10\"]").unwrap();
        assert!(matches!(list.set_resources, Some(RuleResources::List(l)) if l.len() == 1));
        let map = parse("set-resources: {run_sampler: {mem_mb: 10}}").unwrap();
        assert!(matches!(map.set_resources, Some(RuleResources::Map(_))));
        let both = parse("restart-times: 3\nretries: 1").unwrap_err();
        assert!(both.contains("Snakemake's name for `retries`"), "{both}");
        let e = parse("set-resources: 5").unwrap_err();
        assert!(e.contains("a list of `RULE:NAME=VALUE` strings"), "{e}");
    }

    /// The shipped profiles are built in: they load outside the repository, and parse.
    #[test]
    fn shipped_profiles_are_built_in() {
        // Searching no directory: what a folder without profiles/ finds.
        let slurm = load_from("slurm", &[]);
        let local = load_from("local-slurm", &[]);
        let unknown = load_from("slurmm", &[]);
        assert_eq!(slurm.unwrap().profile.executor, Some(Executor::Slurm));
        assert_eq!(local.unwrap().profile.jobs, Some(10));
        let e = unknown.unwrap_err().to_string();
        assert!(e.contains("built-in profiles: slurm, local-slurm"), "{e}");
    }
}
