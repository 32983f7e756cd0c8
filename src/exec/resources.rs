//! Job resources: per-rule defaults, layered with `default-resources` and `set-resources` from the
//! profile and then the command line (later layers win), plus the global limits of `--resources`
//! and `--cores` that the local executor enforces.
//!
//! Values are integers (mem_mb, runtime in minutes, cpus_per_task, any custom name) or strings
//! (slurm_partition, slurm_account, gres, constraint, qos, slurm_extra). `time` is accepted as
//! another name for `runtime`, because users type `--set-resources build_target:time=120`, and a
//! runtime may be written `90`, `"90m"`, `"2h"` or `"1d"`.

use std::collections::BTreeMap;

use crate::plan::Rule;

/// A resource value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum ResourceValue {
    Int(i64),
    Text(String),
}

impl std::fmt::Display for ResourceValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResourceValue::Int(i) => write!(f, "{i}"),
            ResourceValue::Text(s) => write!(f, "{s}"),
        }
    }
}

pub type ResourceMap = BTreeMap<String, ResourceValue>;

/// Resources whose value is text (passed to SLURM as is, after validation).
pub const TEXT_RESOURCES: &[&str] = &[
    "slurm_partition",
    "slurm_account",
    "gres",
    "constraint",
    "qos",
    "slurm_extra",
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    #[error("invalid resource `{text}`: expected NAME=VALUE, e.g. mem_mb=16000")]
    Syntax { text: String },
    #[error(
        "invalid --set-resources `{text}`: expected RULE:NAME=VALUE, e.g. run_sampler:runtime=360"
    )]
    RuleSyntax { text: String },
    #[error("unknown rule `{rule}` in `{text}`; the rules are build_target, run_sampler")]
    UnknownRule { rule: String, text: String },
    #[error(
        "unknown resource `{name}`: did you mean {suggestion}? (A name lambda-hat does not know \
         is a custom resource, which only --resources limits count and SLURM never sees, so one \
         this close to a known name is refused.)"
    )]
    Misspelled { name: String, suggestion: String },
    #[error("invalid value for resource {name}: `{value}` ({why})")]
    Value {
        name: String,
        value: String,
        why: String,
    },
    #[error(
        "job {job} needs {name}={need} but --{flag} allows at most {limit}, so it could never start.\n  Raise the limit or lower the job's {name} with --set-resources {rule}:{name}=..."
    )]
    ExceedsLimit {
        job: String,
        rule: &'static str,
        name: String,
        need: i64,
        limit: i64,
        flag: &'static str,
    },
    /// A job whose memory estimate does not fit (the whole message: see [`check_memory`]).
    #[error("{0}")]
    Memory(String),
    #[error(
        "{name} is given twice in {place}, as `{first}` and as `{second}`; give it once (later \
         layers, such as the command line over the profile, may still override it)"
    )]
    TwoNames {
        name: String,
        place: String,
        first: String,
        second: String,
    },
}

/// No job may need more than this (1 TiB), whatever its resources say: a config that does is
/// a typo (`draws: 1e12`), and would end in an allocation failure.
pub const MAX_JOB_BYTES: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;

/// The memory a job is given: `mem_mb`, or `mem_mb_per_cpu` × `cpus_per_task`, in MB.
fn granted_mb(res: &ResourceMap) -> Option<i64> {
    let int = |k: &str| match res.get(k) {
        Some(ResourceValue::Int(v)) if *v > 0 => Some(*v),
        _ => None,
    };
    int("mem_mb").or_else(|| Some(int("mem_mb_per_cpu")? * int("cpus_per_task").unwrap_or(1)))
}

/// Refuses a job whose estimated memory exceeds the hard bound, the memory its resources grant,
/// or this machine's memory (`machine_bytes`, for the local executor).
pub fn check_memory(
    job: &str,
    rule: Rule,
    res: &ResourceMap,
    estimate: &crate::plan::memory::MemoryEstimate,
    machine_bytes: Option<f64>,
) -> Result<(), ResourceError> {
    use crate::plan::memory::human_bytes;
    let refuse = |limit_what: &str, limit: f64, advice: String| {
        ResourceError::Memory(format!(
            "job {job} would need about {} of memory ({}), more than {limit_what} ({}), so it would fail or be killed.\n  {advice}",
            human_bytes(estimate.bytes),
            estimate.largest_parts(),
            human_bytes(limit),
        ))
    };
    let shrink = "lower draws, steps, n_data or the widths in the experiments file";
    if estimate.bytes > MAX_JOB_BYTES {
        return Err(refuse(
            "the most any job may use",
            MAX_JOB_BYTES,
            format!("This is almost certainly a typo: {shrink}."),
        ));
    }
    if let Some(machine) = machine_bytes
        && estimate.bytes > machine
    {
        return Err(refuse(
            "this machine has",
            machine,
            format!("Run it on a larger machine (e.g. --profile slurm), or {shrink}."),
        ));
    }
    if let Some(mb) = granted_mb(res) {
        let granted = mb as f64 * 1024.0 * 1024.0;
        if estimate.bytes > granted {
            let need_mb = (estimate.megabytes() * 1.2).ceil() as i64;
            return Err(refuse(
                "its mem_mb",
                granted,
                format!(
                    "Give it more with --set-resources {}:mem_mb={need_mb}, or {shrink}.",
                    rule.name()
                ),
            ));
        }
    }
    Ok(())
}

/// This machine's memory (`MemTotal` of /proc/meminfo), if it can be read.
pub fn machine_memory_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo_total(&text)
}

fn parse_meminfo_total(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// The built-in resources of each rule (the first layer).
pub fn rule_defaults(rule: Rule) -> ResourceMap {
    let (mem_mb, runtime) = match rule {
        Rule::BuildTarget => (1000, 60),
        Rule::RunSampler => (1000, 120),
    };
    BTreeMap::from([
        ("mem_mb".to_string(), ResourceValue::Int(mem_mb)),
        ("runtime".to_string(), ResourceValue::Int(runtime)),
        ("cpus_per_task".to_string(), ResourceValue::Int(1)),
    ])
}

/// Canonical name: `time` and `walltime` mean `runtime`; Snakemake's `mem` (a size with a
/// unit, e.g. `4G`) means `mem_mb`; `threads` means `cpus_per_task`, the cores one job gets.
/// Without these, `mem=4000` was taken for a custom resource and the job got the default memory.
pub fn canonical_name(name: &str) -> String {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical)
        .to_string()
}

/// Other names of the known resources ([`canonical_name`]), alias first.
const ALIASES: &[(&str, &str)] = &[
    ("time", "runtime"),
    ("walltime", "runtime"),
    ("mem", "mem_mb"),
    ("threads", "cpus_per_task"),
];

/// A memory size in megabytes: a plain integer is megabytes; with a unit, as Snakemake reads
/// `mem`: K/KB, M/MB, G/GB, T/TB decimal (1 GB = 1000 MB), KiB, MiB, GiB, TiB binary (1 GiB =
/// 1024 MiB). Rounded up to whole megabytes.
fn parse_megabytes(raw: &str) -> Option<i64> {
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let megabytes = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" => 1.0,
        "k" | "kb" => 1e-3,
        "g" | "gb" => 1e3,
        "t" | "tb" => 1e6,
        "kib" => 1024.0 / 1e6,
        "mib" => 1024.0 * 1024.0 / 1e6,
        "gib" => 1024.0_f64.powi(3) / 1e6,
        "tib" => 1024.0_f64.powi(4) / 1e6,
        _ => return None,
    };
    let mb = (number * megabytes).ceil();
    (mb <= i64::MAX as f64).then_some(mb as i64)
}

/// The resources lambda-hat reads itself; any other name is a custom resource.
const KNOWN: &[&str] = &["mem_mb", "mem_mb_per_cpu", "runtime", "cpus_per_task"];

/// Names people write for a known resource under another scheduler's spelling.
const OTHER_SPELLINGS: &[(&str, &str)] = &[
    ("partition", "`slurm_partition`"),
    ("account", "`slurm_account`"),
    ("mem_gb", "`mem` with a unit (mem=4G) or `mem_mb`"),
    ("memory", "`mem` with a unit (mem=4G) or `mem_mb`"),
    ("ntasks", "`cpus_per_task` (a job is one task)"),
];

/// The known resource a name looks like a slip for, if any: another scheduler's spelling, or
/// within one edit of a known name (two for names of 6 letters or more: `runtme`,
/// `cpus-per-task`). Short custom names stay free (`gpus` is two edits from `gres`).
fn misspelling_of(name: &str) -> Option<String> {
    if KNOWN.contains(&name) || TEXT_RESOURCES.contains(&name) {
        return None;
    }
    if let Some((_, known)) = OTHER_SPELLINGS.iter().find(|(n, _)| *n == name) {
        return Some(known.to_string());
    }
    let allowed = if name.chars().count() >= 6 { 2 } else { 1 };
    KNOWN
        .iter()
        .chain(TEXT_RESOURCES)
        .chain(ALIASES.iter().map(|(alias, _)| alias))
        .find(|k| crate::invalid::edit_distance(name, k) <= allowed)
        .map(|k| format!("`{k}`"))
}

/// Parses and validates a value for resource `name`.
pub fn parse_value(name: &str, raw: &str) -> Result<ResourceValue, ResourceError> {
    let name = canonical_name(name);
    if let Some(suggestion) = misspelling_of(&name) {
        return Err(ResourceError::Misspelled { name, suggestion });
    }
    let raw = raw.trim();
    let bad = |why: &str| ResourceError::Value {
        name: name.clone(),
        value: raw.to_string(),
        why: why.into(),
    };
    if TEXT_RESOURCES.contains(&name.as_str()) {
        if raw.is_empty() {
            return Err(bad("must not be empty"));
        }
        return Ok(ResourceValue::Text(raw.to_string()));
    }
    let value = match name.as_str() {
        "runtime" => parse_minutes(raw)
            .ok_or_else(|| bad("a runtime in minutes, or a number with m, h or d, e.g. 90, 2h"))?,
        "mem_mb" => parse_megabytes(raw)
            .ok_or_else(|| bad("megabytes, or a size with a unit, e.g. 4000, 4G, 16GiB"))?,
        _ => match raw.parse::<i64>() {
            Ok(v) if v >= 0 || POSITIVE.contains(&name.as_str()) => v,
            _ => return Err(bad("must be a non-negative integer")),
        },
    };
    if POSITIVE.contains(&name.as_str()) && value < 1 {
        return Err(bad(
            "must be at least 1: a job needs memory, time and a core (SLURM refuses 0 too)",
        ));
    }
    Ok(ResourceValue::Int(value))
}

/// Resources a job cannot have none of. Refused at parse time, so the local and SLURM executors
/// agree: `mem_mb=0` used to pass locally (skipping the memory check) and fail only on SLURM;
/// 0 cores let a job past the `--cores` limit (it counted for nothing).
const POSITIVE: &[&str] = &["mem_mb", "mem_mb_per_cpu", "runtime", "cpus_per_task"];

/// Normalises a value read from YAML (profiles) for resource `name`.
pub fn from_yaml(name: &str, value: &serde_yaml::Value) -> Result<ResourceValue, ResourceError> {
    let raw = match value {
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    parse_value(name, &raw)
}

fn parse_minutes(raw: &str) -> Option<i64> {
    let (digits, factor) = match raw.chars().last()? {
        'm' => (&raw[..raw.len() - 1], 1),
        'h' => (&raw[..raw.len() - 1], 60),
        'd' => (&raw[..raw.len() - 1], 24 * 60),
        _ => (raw, 1),
    };
    // 0 and negative parse here and are refused by the caller with the other counts.
    digits.trim().parse::<i64>().ok()?.checked_mul(factor)
}

/// `NAME=VALUE` (for `--resources` and `--default-resources`).
pub fn parse_assignment(text: &str) -> Result<(String, ResourceValue), ResourceError> {
    let (name, value) = parse_written(text)?;
    Ok((canonical_name(name), value))
}

/// `NAME=VALUE` with the name as written (trimmed, not canonical: `mem`, not `mem_mb`).
fn parse_written(text: &str) -> Result<(&str, ResourceValue), ResourceError> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| ResourceError::Syntax { text: text.into() })?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ResourceError::Syntax { text: text.into() });
    }
    Ok((name, parse_value(name, value)?))
}

/// `RULE:NAME=VALUE` (for `--set-resources`).
pub fn parse_rule_assignment(text: &str) -> Result<(Rule, String, ResourceValue), ResourceError> {
    let (rule, name, value) = parse_rule_written(text)?;
    Ok((rule, canonical_name(name), value))
}

/// [`parse_rule_assignment`] with the name as written.
fn parse_rule_written(text: &str) -> Result<(Rule, &str, ResourceValue), ResourceError> {
    let (rule, rest) = text
        .split_once(':')
        .ok_or_else(|| ResourceError::RuleSyntax { text: text.into() })?;
    let rule = Rule::parse(rule.trim()).map_err(|_| ResourceError::UnknownRule {
        rule: rule.into(),
        text: text.into(),
    })?;
    let (name, value) = parse_written(rest).map_err(|e| match e {
        ResourceError::Syntax { .. } => ResourceError::RuleSyntax { text: text.into() },
        other => other,
    })?;
    Ok((rule, name, value))
}

/// One `--set-resources` layer (the flag's values, or a profile's list): `RULE:NAME=VALUE`
/// items, each rule's assignments a [`LayerBuilder`] of its own; `place` names the layer in
/// errors.
pub fn rule_layer<'a>(
    items: impl IntoIterator<Item = &'a String>,
    place: &str,
) -> Result<BTreeMap<Rule, ResourceMap>, ResourceError> {
    let mut layer: BTreeMap<Rule, LayerBuilder> = BTreeMap::new();
    for item in items {
        let (rule, name, value) = parse_rule_written(item)?;
        let place = format!("{place} ({})", rule.name());
        layer
            .entry(rule)
            .or_default()
            .add_shown(name, value, item.trim().to_string(), &place)?;
    }
    Ok(layer.into_iter().map(|(r, b)| (r, b.build())).collect())
}

/// One layer's assignments (one flag's values, or one profile key), collected so that the same
/// resource under two of its names is refused: with `mem=4G` and `mem_mb=1000` in one layer the
/// value used would be a guess (a YAML map's keys even come back sorted, so the file's order
/// would not decide it). The same name twice is the usual "the last one wins".
#[derive(Debug, Default)]
pub struct LayerBuilder {
    /// Canonical name → the name as written, its value, and the assignment as written (for
    /// the error message).
    written: BTreeMap<String, (String, ResourceValue, String)>,
}

impl LayerBuilder {
    /// Adds `name = value`, `name` as written; `place` names the layer for an error.
    pub fn add(
        &mut self,
        name: &str,
        value: ResourceValue,
        place: &str,
    ) -> Result<(), ResourceError> {
        let shown = format!("{}={value}", name.trim());
        self.add_shown(name, value, shown, place)
    }

    /// Adds a `NAME=VALUE` assignment ([`parse_assignment`]).
    pub fn add_text(&mut self, text: &str, place: &str) -> Result<(), ResourceError> {
        let (name, value) = parse_written(text)?;
        self.add_shown(name, value, text.trim().to_string(), place)
    }

    /// [`add`](Self::add), with the assignment as the user wrote it (`mem=4G`) for the error.
    pub fn add_shown(
        &mut self,
        name: &str,
        value: ResourceValue,
        shown: String,
        place: &str,
    ) -> Result<(), ResourceError> {
        let name = name.trim();
        let canonical = canonical_name(name);
        if let Some((first, before, first_shown)) = self.written.get(&canonical)
            && first != name
            && *before != value
        {
            return Err(ResourceError::TwoNames {
                name: canonical,
                place: place.to_string(),
                first: first_shown.clone(),
                second: shown,
            });
        }
        self.written
            .insert(canonical, (name.to_string(), value, shown));
        Ok(())
    }

    pub fn build(self) -> ResourceMap {
        self.written
            .into_iter()
            .map(|(name, (_, value, _))| (name, value))
            .collect()
    }
}

/// The layers that determine a job's resources, lowest precedence first after the rule defaults.
#[derive(Debug, Clone, Default)]
pub struct ResourceLayers {
    pub default_resources: Vec<ResourceMap>,
    pub set_resources: Vec<BTreeMap<Rule, ResourceMap>>,
}

impl ResourceLayers {
    /// Rule defaults, then every `default-resources` layer, then every `set-resources` layer.
    pub fn for_rule(&self, rule: Rule) -> ResourceMap {
        let mut res = rule_defaults(rule);
        let layers = self
            .default_resources
            .iter()
            .chain(self.set_resources.iter().filter_map(|l| l.get(&rule)));
        for layer in layers {
            overlay(&mut res, layer);
        }
        res
    }
}

/// Memory is given one way: per job (`mem_mb`) or per CPU (`mem_mb_per_cpu`). A layer that sets
/// one replaces the other from the layers below it (sbatch refuses both at once).
const EXCLUSIVE: [(&str, &str); 2] = [("mem_mb", "mem_mb_per_cpu"), ("mem_mb_per_cpu", "mem_mb")];

fn overlay(res: &mut ResourceMap, layer: &ResourceMap) {
    for (set, other) in EXCLUSIVE {
        if layer.contains_key(set) && !layer.contains_key(other) {
            res.remove(other);
        }
    }
    res.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
}

impl ResourceLayers {}

/// Renders resources as `a=1, b=x` for dry runs.
pub fn describe(res: &ResourceMap) -> String {
    res.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Global limits on the sum of each integer resource over running jobs.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// From `--resources NAME=INT`.
    pub resources: BTreeMap<String, i64>,
    /// From `--cores`: the limit on the sum of `cpus_per_task`.
    pub cores: Option<i64>,
}

impl Limits {
    fn limit_of(&self, name: &str) -> Option<(i64, &'static str)> {
        if name == "cpus_per_task"
            && let Some(c) = self.cores
        {
            return Some((c, "cores"));
        }
        self.resources.get(name).map(|v| (*v, "resources"))
    }

    /// Refuses a job that alone exceeds a limit (it could never start).
    pub fn check_job(&self, job: &str, rule: Rule, res: &ResourceMap) -> Result<(), ResourceError> {
        for (name, value) in res {
            if let (ResourceValue::Int(need), Some((limit, flag))) = (value, self.limit_of(name))
                && *need > limit
            {
                return Err(ResourceError::ExceedsLimit {
                    job: job.into(),
                    rule: rule.name(),
                    name: name.clone(),
                    need: *need,
                    limit,
                    flag,
                });
            }
        }
        Ok(())
    }

    /// Whether a job needing `res` fits next to jobs already using `in_use`.
    pub fn fits(&self, in_use: &BTreeMap<String, i64>, res: &ResourceMap) -> bool {
        res.iter()
            .all(|(name, value)| match (value, self.limit_of(name)) {
                (ResourceValue::Int(need), Some((limit, _))) => {
                    in_use.get(name).copied().unwrap_or(0) + need <= limit
                }
                _ => true,
            })
    }
}

/// Adds (sign = 1) or removes (sign = -1) a job's integer resources from a running total.
pub fn account(in_use: &mut BTreeMap<String, i64>, res: &ResourceMap, sign: i64) {
    for (name, value) in res {
        if let ResourceValue::Int(v) = value {
            *in_use.entry(name.clone()).or_insert(0) += sign * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Snakemake's names reach the resources they mean: `mem` with Snakemake's units, `threads`.
    #[test]
    fn zero_cores_are_refused() {
        assert!(parse_value("cpus_per_task", "0").is_err());
        assert!(parse_value("threads", "0").is_err());
        assert_eq!(
            parse_value("cpus_per_task", "1").unwrap(),
            ResourceValue::Int(1)
        );
        assert_eq!(parse_value("nodes", "0").unwrap(), ResourceValue::Int(0));
    }

    #[test]
    fn snakemakes_mem_and_threads_are_mem_mb_and_cpus_per_task() {
        let set = |text: &str| parse_rule_assignment(text).map(|(_, k, v)| (k, v));
        let mb = |v: i64| ("mem_mb".to_string(), ResourceValue::Int(v));
        assert_eq!(set("run_sampler:mem=4000").unwrap(), mb(4000));
        assert_eq!(set("run_sampler:mem=4G").unwrap(), mb(4000));
        assert_eq!(set("run_sampler:mem=4GB").unwrap(), mb(4000));
        assert_eq!(set("run_sampler:mem=2GiB").unwrap(), mb(2148));
        assert_eq!(set("run_sampler:mem=1.5g").unwrap(), mb(1500));
        assert_eq!(set("run_sampler:mem_mb=500").unwrap(), mb(500));
        assert_eq!(
            set("build_target:threads=2").unwrap(),
            ("cpus_per_task".to_string(), ResourceValue::Int(2))
        );
        for bad in [
            "run_sampler:mem=lots",
            "run_sampler:mem=4Q",
            "run_sampler:mem=-1G",
        ] {
            let err = set(bad).unwrap_err().to_string();
            assert!(err.contains("4G"), "{bad}: {err}");
        }
    }

    fn estimate(mb: f64) -> crate::plan::memory::MemoryEstimate {
        crate::plan::memory::MemoryEstimate {
            bytes: mb * 1024.0 * 1024.0,
            parts: vec![("the trace", mb * 1024.0 * 1024.0)],
        }
    }

    #[test]
    fn memory_is_checked_against_mem_mb_the_machine_and_the_hard_bound() {
        let res = rule_defaults(Rule::RunSampler); // mem_mb 1000
        let gb = 1024.0 * 1024.0 * 1024.0;
        assert!(
            check_memory(
                "j",
                Rule::RunSampler,
                &res,
                &estimate(900.0),
                Some(8.0 * gb)
            )
            .is_ok()
        );
        let e = check_memory(
            "j",
            Rule::RunSampler,
            &res,
            &estimate(1500.0),
            Some(8.0 * gb),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("about 1.5 GB") || e.contains("about 1500 MB"),
            "{e}"
        );
        assert!(
            e.contains("mem_mb")
                && e.contains("run_sampler:mem_mb=1800")
                && e.contains("the trace"),
            "{e}"
        );
        let e = check_memory(
            "j",
            Rule::RunSampler,
            &res,
            &estimate(900.0),
            Some(0.5 * gb),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("this machine has") && e.contains("512 MB"),
            "{e}"
        );
        let e = check_memory("j", Rule::RunSampler, &res, &estimate(1e9), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("typo"), "{e}");
        // mem_mb_per_cpu × cpus_per_task is the grant when mem_mb is not set.
        let per_cpu = BTreeMap::from([
            ("mem_mb_per_cpu".to_string(), ResourceValue::Int(400)),
            ("cpus_per_task".to_string(), ResourceValue::Int(4)),
        ]);
        assert!(check_memory("j", Rule::RunSampler, &per_cpu, &estimate(1500.0), None).is_ok());
        assert!(check_memory("j", Rule::RunSampler, &per_cpu, &estimate(1700.0), None).is_err());
    }

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(24576000.0 * 1024.0));
        assert_eq!(parse_meminfo_total("nothing"), None);
    }

    /// 0 (and negative) memory, time or cores is refused with one message, whatever the
    /// executor: locally `mem_mb=0` passed and skipped the memory check.
    #[test]
    fn zero_and_negative_counts_are_refused_alike() {
        for text in [
            "mem_mb=0",
            "mem_mb=0G",
            "mem=0",
            "mem_mb_per_cpu=0",
            "runtime=0",
            "time=0h",
            "runtime=-5",
            "cpus_per_task=0",
            "cpus_per_task=-1",
            "threads=0",
        ] {
            let e = parse_assignment(text).unwrap_err().to_string();
            assert!(e.contains("must be at least 1"), "{text}: {e}");
        }
        let e = parse_rule_assignment("run_sampler:mem_mb=0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mem_mb") && e.contains("at least 1"), "{e}");
        assert!(parse_assignment("mem_mb=-1").is_err());
        assert_eq!(
            parse_assignment("gpu=0").unwrap(),
            ("gpu".into(), ResourceValue::Int(0))
        );
        assert_eq!(
            parse_assignment("runtime=1").unwrap(),
            ("runtime".into(), ResourceValue::Int(1))
        );
    }

    #[test]
    fn parses_cli_forms_and_aliases() {
        assert_eq!(
            parse_assignment("mem_mb=16000").unwrap(),
            ("mem_mb".into(), ResourceValue::Int(16000))
        );
        assert_eq!(
            parse_rule_assignment("build_target:time=120").unwrap(),
            (Rule::BuildTarget, "runtime".into(), ResourceValue::Int(120))
        );
        assert_eq!(
            parse_value("runtime", "2h").unwrap(),
            ResourceValue::Int(120)
        );
        assert_eq!(
            parse_value("slurm_partition", "gpu").unwrap(),
            ResourceValue::Text("gpu".into())
        );
    }

    #[test]
    fn a_name_close_to_a_known_resource_is_refused_with_the_known_one() {
        assert_eq!(crate::invalid::edit_distance("runtme", "runtime"), 1);
        assert_eq!(
            crate::invalid::edit_distance("cpus-per-task", "cpus_per_task"),
            2
        );
        assert_eq!(crate::invalid::edit_distance("", "abc"), 3);
        for (name, suggested) in [
            ("runtme", "`runtime`"),
            ("cpus-per-task", "`cpus_per_task`"),
            ("partition", "`slurm_partition`"),
            ("account", "`slurm_account`"),
            ("mem_gb", "`mem` with a unit"),
            ("slurm_acount", "`slurm_account`"),
        ] {
            let err = parse_value(name, "30").unwrap_err();
            assert!(
                matches!(&err, ResourceError::Misspelled { suggestion, .. } if suggestion.starts_with(suggested)),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("did you mean"), "{err}");
        }
        // Custom names that are not near a known one stay custom, and aliases stay aliases.
        for name in [
            "gpus", "gpu", "disk_mb", "tmpdir", "licenses", "time", "mem", "threads",
        ] {
            assert!(parse_value(name, "3").is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_bad_values_with_the_resource_name() {
        let e = parse_assignment("mem_mb=lots").unwrap_err().to_string();
        assert!(e.contains("mem_mb") && e.contains("lots"), "{e}");
        assert!(
            parse_rule_assignment("train:mem_mb=1")
                .unwrap_err()
                .to_string()
                .contains("unknown rule")
        );
        assert!(parse_assignment("mem_mb").is_err());
    }

    #[test]
    fn one_resource_under_two_names_in_one_layer_is_refused() {
        let mut layer = LayerBuilder::default();
        layer
            .add_text("mem=4G", "--set-resources (run_sampler)")
            .unwrap();
        let e = layer
            .add_text("mem_mb=1000", "--set-resources (run_sampler)")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mem_mb is given twice in --set-resources (run_sampler)")
                && e.contains("`mem=4G`")
                && e.contains("`mem_mb=1000`"),
            "{e}"
        );
        // The same name twice: the last one wins, as on any command line.
        let mut layer = LayerBuilder::default();
        layer.add_text("runtime=10", "--default-resources").unwrap();
        layer.add_text("runtime=20", "--default-resources").unwrap();
        // Two names that agree are not a conflict.
        layer.add_text("threads=2", "--default-resources").unwrap();
        layer
            .add_text("cpus_per_task=2", "--default-resources")
            .unwrap();
        let built = layer.build();
        assert_eq!(built["runtime"], ResourceValue::Int(20));
        assert_eq!(built["cpus_per_task"], ResourceValue::Int(2));
        // YAML maps (profiles) go through `add` with the key as written.
        let mut layer = LayerBuilder::default();
        layer
            .add(
                "time",
                ResourceValue::Int(60),
                "the profile's default-resources",
            )
            .unwrap();
        let e = layer
            .add(
                "runtime",
                ResourceValue::Int(90),
                "the profile's default-resources",
            )
            .unwrap_err();
        assert!(matches!(e, ResourceError::TwoNames { .. }), "{e}");
    }

    #[test]
    fn a_rule_layer_checks_names_rule_by_rule() {
        let items = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // The same resource under two names for two different rules is no conflict.
        let layer = rule_layer(
            &items(&["run_sampler:mem=4G", " build_target:mem_mb=1000 "]),
            "--set-resources",
        )
        .unwrap();
        assert_eq!(layer[&Rule::RunSampler]["mem_mb"], ResourceValue::Int(4000));
        assert_eq!(
            layer[&Rule::BuildTarget]["mem_mb"],
            ResourceValue::Int(1000)
        );
        // For one rule it is, and the message quotes both items as written.
        let e = rule_layer(
            &items(&["run_sampler:mem=4G", "run_sampler:mem_mb=1000"]),
            "--set-resources",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--set-resources (run_sampler)")
                && e.contains("`run_sampler:mem=4G`")
                && e.contains("`run_sampler:mem_mb=1000`"),
            "{e}"
        );
        // Syntax errors name the whole item.
        let e = rule_layer(&items(&["run_sampler:=4"]), "--set-resources").unwrap_err();
        assert!(matches!(e, ResourceError::RuleSyntax { .. }), "{e}");
    }

    #[test]
    fn later_layers_win() {
        let layers = ResourceLayers {
            default_resources: vec![BTreeMap::from([("mem_mb".into(), ResourceValue::Int(500))])],
            set_resources: vec![BTreeMap::from([(
                Rule::RunSampler,
                BTreeMap::from([("mem_mb".into(), ResourceValue::Int(4000))]),
            )])],
        };
        assert_eq!(
            layers.for_rule(Rule::BuildTarget)["mem_mb"],
            ResourceValue::Int(500)
        );
        assert_eq!(
            layers.for_rule(Rule::RunSampler)["mem_mb"],
            ResourceValue::Int(4000)
        );
    }

    #[test]
    fn memory_per_cpu_replaces_memory_per_job_from_lower_layers() {
        let layers = ResourceLayers {
            default_resources: vec![BTreeMap::from([(
                "mem_mb".into(),
                ResourceValue::Int(2000),
            )])],
            set_resources: vec![BTreeMap::from([(
                Rule::RunSampler,
                BTreeMap::from([("mem_mb_per_cpu".into(), ResourceValue::Int(1000))]),
            )])],
        };
        let run = layers.for_rule(Rule::RunSampler);
        assert_eq!(run.get("mem_mb_per_cpu"), Some(&ResourceValue::Int(1000)));
        assert!(!run.contains_key("mem_mb"), "{run:?}");
        assert_eq!(
            layers.for_rule(Rule::BuildTarget)["mem_mb"],
            ResourceValue::Int(2000)
        );
    }

    #[test]
    fn limits_account_sums_and_refuse_oversized_jobs() {
        let limits = Limits {
            resources: BTreeMap::from([("mem_mb".into(), 3000)]),
            cores: Some(2),
        };
        let job = rule_defaults(Rule::RunSampler); // mem 1000, cpus 1
        let mut in_use = BTreeMap::new();
        assert!(limits.fits(&in_use, &job));
        account(&mut in_use, &job, 1);
        account(&mut in_use, &job, 1);
        assert!(
            !limits.fits(&in_use, &job),
            "third job would need 3 cpus > --cores 2"
        );
        account(&mut in_use, &job, -1);
        assert!(limits.fits(&in_use, &job));
        let mut big = job.clone();
        big.insert("mem_mb".into(), ResourceValue::Int(16000));
        assert!(
            limits
                .check_job("x", Rule::RunSampler, &big)
                .unwrap_err()
                .to_string()
                .contains("mem_mb=16000")
        );
    }
}
