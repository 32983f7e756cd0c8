//! The experiments file (`config/experiments.yaml` or `--configfile`) → a resolved [`Sweep`].
//!
//! Input: the file's path. Each target entry names model/data/teacher presets, a seed and
//! `overrides`; each sampler entry names a sampler preset and its `overrides`. Presets are loaded
//! ([`super::presets`]), overrides deep-merged ([`super::merge`]), the result deserialized into the
//! typed schema with unknown keys refused, validated, and widths solved from `target_params`.
//! Output: a [`Sweep`] whose targets and samplers are fully resolved, ready for planning.
//! Any problem is a [`ConfigError`] naming the file, the entry and the key path; nothing runs then.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::error::ConfigError;
use super::merge::deep_merge;
use super::presets::{Kind, PresetDirs, PresetSource};
use super::schema::*;
use crate::numeric::Precision;

/// One target of the sweep, fully resolved.
#[derive(Debug, Clone)]
pub struct ResolvedTarget {
    pub config: TargetConfig,
    /// The posterior every sampler run on this target uses.
    pub posterior: PosteriorConfig,
    /// `targets[i] (model: ..., data: ..., seed: ...)`, for messages.
    pub label: String,
}

/// A whole sweep: N targets × M samplers.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The experiments file it came from.
    pub source: PathBuf,
    /// Where outputs go (`store_root`, relative to the working directory).
    pub store_root: PathBuf,
    pub precision: Precision,
    pub targets: Vec<ResolvedTarget>,
    pub samplers: Vec<SamplerConfig>,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "store_root",
    "jax_enable_x64",
    "precision",
    "targets",
    "samplers",
    "training",
    "posterior",
];
const TARGET_KEYS: &[&str] = &["model", "data", "teacher", "seed", "overrides"];
const TARGET_OVERRIDE_KEYS: &[&str] = &["model", "data", "teacher", "training", "posterior"];
const SAMPLER_KEYS: &[&str] = &["name", "overrides"];

/// Reads and resolves the experiments file at `path`.
pub fn load_sweep(path: &Path) -> Result<Sweep, ConfigError> {
    load_sweep_with(path, &[])
}

/// [`load_sweep`] with `--config KEY=VALUE` assignments laid over the file first: a dotted KEY
/// reaches into (and creates) mappings, VALUE is parsed as YAML, and the result is validated
/// exactly as if the file said so.
pub fn load_sweep_with(path: &Path, assignments: &[String]) -> Result<Sweep, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        hint: if source.kind() == std::io::ErrorKind::NotFound {
            "run lambda-hat in a folder with config/experiments.yaml, or pass --configfile PATH"
                .into()
        } else {
            "check the file is readable".into()
        },
        source,
    })?;
    let mut root = parse_yaml(path, &text)?;
    for assignment in assignments {
        apply_assignment(&mut root, assignment).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            entry: "--config".into(),
            key: assignment.clone(),
            message,
        })?;
    }
    resolve_sweep(path, root, &PresetDirs::for_experiments_file(path))
        .map_err(|e| blame_assignment(e, assignments))
}

/// A key that a `--config` assignment set is the command line's mistake: the message says so,
/// so the user does not look for it in the file.
fn blame_assignment(e: ConfigError, assignments: &[String]) -> ConfigError {
    let ConfigError::Invalid {
        path,
        entry,
        key,
        message,
    } = e
    else {
        return e;
    };
    let set_by = assignments.iter().find(|a| {
        a.split_once('=').is_some_and(|(k, _)| {
            k == key || key.ends_with(&format!(".{k}")) || k.ends_with(&format!(".{key}"))
        })
    });
    match set_by {
        Some(a) => ConfigError::Invalid {
            path,
            entry: format!("{entry}, as set on the command line by `--config {a}`"),
            key,
            message,
        },
        None => ConfigError::Invalid {
            path,
            entry,
            key,
            message,
        },
    }
}

/// Sets `KEY=VALUE` in `root` (see [`load_sweep_with`]). Errors name what is wrong with it.
pub fn apply_assignment(root: &mut Value, assignment: &str) -> Result<(), String> {
    let Some((key, value)) = assignment.split_once('=') else {
        // `--config` takes every word after it, so an output path meant as a target lands here.
        let path_like = assignment.contains('/') || assignment.contains('*');
        return Err(if path_like {
            format!(
                "expected KEY=VALUE, got what looks like an output path: `--config` takes every \
                 word after it, so put output paths first (`lambda-hat \"{assignment}\" --config \
                 KEY=VALUE`) or end the values with `--`"
            )
        } else {
            "expected KEY=VALUE, e.g. store_root=runs_b or posterior.gamma=10".into()
        });
    };
    let segments: Vec<&str> = key.split('.').collect();
    if segments.iter().any(|s| s.trim().is_empty()) {
        return Err(format!("`{key}` is not a key: use names separated by dots"));
    }
    // `targets[0].seed=5` read as a key named `targets[0]` and failed as "unknown key": say
    // that list items have no address here, and how to set the list instead.
    if let Some(at) = segments.iter().position(|s| s.contains('[')) {
        let list = segments[..at]
            .iter()
            .copied()
            .chain(segments[at].split('[').next())
            .collect::<Vec<_>>()
            .join(".");
        return Err(list_item_message(&list));
    }
    let value: Value =
        serde_yaml::from_str(value).map_err(|e| format!("the value is not YAML: {e}"))?;
    let mut node = root;
    for (i, segment) in segments.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        if node.is_sequence() {
            // `targets.0.seed=5`: the same as `targets[0]`.
            return Err(list_item_message(&segments[..i].join(".")));
        }
        let Value::Mapping(map) = node else {
            return Err(format!(
                "`{}` is {}, not a mapping with keys",
                segments[..i].join("."),
                show(node)
            ));
        };
        let k = Value::String((*segment).to_string());
        if i + 1 == segments.len() {
            // A mapping merges into a mapping key by key, as Snakemake's `--config` does
            // (`update_config`): `training={learning_rate: 0.01}` keeps the file's `steps`.
            // Replacing the section instead would silently reset every key it did not repeat
            // to its default (a sweep's budgets among them). Anything else replaces.
            match map.get_mut(&k) {
                Some(existing @ Value::Mapping(_)) if value.is_mapping() => {
                    deep_merge(existing, &value)
                }
                _ => {
                    map.insert(k, value);
                }
            }
            return Ok(());
        }
        node = map.entry(k).or_insert(Value::Null);
    }
    Ok(())
}

fn list_item_message(list: &str) -> String {
    let example = match list {
        "targets" => "{model: small, data: small, seed: 5}, ...",
        "samplers" => "{name: hmc}, ...",
        _ => "...",
    };
    format!(
        "`{list}` is a list, and --config cannot address one of its items; give the whole list \
         instead, e.g. --config '{list}=[{example}]'"
    )
}

/// The longest name one path component may have (Linux's NAME_MAX, in bytes).
const MAX_NAME_BYTES: usize = 255;
/// The longest path the system opens (Linux's PATH_MAX, 4096 bytes with the closing NUL).
const MAX_PATH_BYTES: usize = 4095;
/// Room kept below the store root for the deepest file lambda-hat writes there (a temporary
/// file beside a run's trace, `targets/tgt_<12 hex>/run_<sampler>_<8 hex>/.<pid>.partial-...`,
/// or a SLURM task log under `.lambda-hat/`, each about 100 bytes); IDs are fixed-length
/// hashes, so no name from the experiments file makes this deeper.
const STORE_DEPTH_BYTES: usize = 256;

/// A store root the system cannot hold files under is refused here, before `-n` says all is
/// well: an overlong one passed planning and failed the first job with "File name too long"
/// (exit 3). `cwd` makes a relative root absolute, as the system sees it.
fn check_path_length(root: &Path, cwd: Option<&Path>) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    if let Some(long) = root
        .components()
        .map(|c| c.as_os_str())
        .find(|c| c.len() > MAX_NAME_BYTES)
    {
        return Err(format!(
            "a folder name in it is {} bytes long (`{}…`); the system allows at most \
             {MAX_NAME_BYTES} bytes per name: choose a shorter store_root",
            long.len(),
            String::from_utf8_lossy(&long.as_bytes()[..40]),
        ));
    }
    let absolute = match cwd {
        Some(cwd) if root.is_relative() => cwd.join(root),
        _ => root.to_path_buf(),
    };
    let limit = MAX_PATH_BYTES - STORE_DEPTH_BYTES;
    let len = absolute.as_os_str().len();
    if len > limit {
        return Err(format!(
            "the path is {len} bytes long (as an absolute path); at most {limit} bytes leave \
             room for the files lambda-hat writes under it (the system allows {MAX_PATH_BYTES} \
             in all): choose a shorter store_root"
        ));
    }
    Ok(())
}

/// Resolves experiments-file text (`path` is used for messages and preset lookup only).
pub fn parse_sweep(path: &Path, text: &str, presets: &PresetDirs) -> Result<Sweep, ConfigError> {
    resolve_sweep(path, parse_yaml(path, text)?, presets)
}

/// Resolves a parsed experiments file.
fn resolve_sweep(path: &Path, root: Value, presets: &PresetDirs) -> Result<Sweep, ConfigError> {
    let ctx = Ctx { path, presets };
    let top = match &root {
        Value::Mapping(m) => m.clone(),
        Value::Null => Mapping::new(),
        _ => {
            return Err(ctx.invalid(
                "top level",
                "",
                "the experiments file must be a mapping with `targets:` and `samplers:`",
            ));
        }
    };
    check_top_level_keys(&ctx, &top)?;

    let store_root = match top.get("store_root") {
        None => PathBuf::from("runs"),
        Some(Value::String(s)) if !s.trim().is_empty() => {
            expand_home(s, std::env::var_os("HOME").as_deref())
                .map_err(|message| ctx.invalid("top level", "store_root", message))?
        }
        Some(other) => {
            return Err(ctx.invalid(
                "top level",
                "store_root",
                format!("must be a non-empty path string, got {}", show(other)),
            ));
        }
    };
    check_path_length(&store_root, std::env::current_dir().ok().as_deref())
        .map_err(|message| ctx.invalid("top level", "store_root", message))?;
    let precision = precision_of(&ctx, &top)?;

    let workflow_src = presets.workflow()?;
    let workflow = parse_yaml(&workflow_src.origin, &workflow_src.text)?;
    let workflow_values = workflow.clone();
    let mut training = workflow
        .get("training")
        .cloned()
        .unwrap_or(Value::Mapping(Mapping::new()));
    let mut posterior = workflow
        .get("posterior")
        .cloned()
        .unwrap_or(Value::Mapping(Mapping::new()));
    if let Some(t) = top.get("training") {
        deep_merge(&mut training, t);
    }
    if let Some(p) = top.get("posterior") {
        deep_merge(&mut posterior, p);
    }

    let targets_val = match top.get("targets") {
        Some(Value::Sequence(s)) if !s.is_empty() => s.clone(),
        None => {
            return Err(ctx.invalid(
                "top level",
                "targets",
                "missing: add a list like `targets: [ { model: small, data: small, seed: 42 } ]`",
            ));
        }
        Some(Value::Sequence(_)) | Some(Value::Null) => {
            return Err(ctx.invalid("top level", "targets", "the targets list is empty: add at least one entry like `- { model: small, data: small, seed: 42 }`"));
        }
        Some(other) => {
            return Err(ctx.invalid(
                "top level",
                "targets",
                format!("must be a list of target entries, got {}", show(other)),
            ));
        }
    };
    let samplers_val = match top.get("samplers") {
        Some(Value::Sequence(s)) => s.clone(),
        Some(Value::Null) => Vec::new(),
        None => {
            return Err(ctx.invalid("top level", "samplers", "missing: add a list like `samplers: [ { name: hmc } ]` (or `samplers: []` to only build targets)"));
        }
        Some(other) => {
            return Err(ctx.invalid(
                "top level",
                "samplers",
                format!("must be a list of sampler entries, got {}", show(other)),
            ));
        }
    };

    let defaults = Defaults {
        training,
        posterior,
        file: path,
        top: &top,
        workflow: &workflow_src,
        workflow_values: &workflow_values,
    };
    let targets = targets_val
        .iter()
        .enumerate()
        .map(|(i, entry)| resolve_target(&ctx, i, entry, &defaults, precision))
        .collect::<Result<Vec<_>, _>>()?;
    let samplers = samplers_val
        .iter()
        .enumerate()
        .map(|(i, entry)| resolve_sampler(&ctx, i, entry))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Sweep {
        source: path.to_path_buf(),
        store_root,
        precision,
        targets,
        samplers,
    })
}

struct Ctx<'a> {
    path: &'a Path,
    presets: &'a PresetDirs,
}

impl Ctx<'_> {
    fn invalid(&self, entry: &str, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.path, entry, key, message)
    }
}

/// `store_root` as the user means it: a leading `~` or `~/` is their home directory, as pandas,
/// numpy and the shell read it. YAML does not expand it, and taken literally `~/runs` would make
/// a folder named `~` in the working directory (and on a cluster, the outputs would land in the
/// submission folder instead of the home the user named). `~user/…` is refused rather than
/// guessed at; so is `~` when `HOME` is unset.
fn expand_home(path: &str, home: Option<&std::ffi::OsStr>) -> Result<PathBuf, String> {
    let Some(rest) = path.strip_prefix('~') else {
        return Ok(PathBuf::from(path));
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(format!(
            "`{path}`: only `~` and `~/…` (your home directory) are expanded; write the full path"
        ));
    }
    match home {
        Some(home) if !home.is_empty() => Ok(Path::new(home).join(rest.trim_start_matches('/'))),
        _ => Err(format!(
            "`{path}` starts with `~` but HOME is not set; write the full path"
        )),
    }
}

/// Parses a config file as PyYAML (Snakemake's reader) would: a leading byte-order mark, which
/// Windows editors write, is skipped, and merge keys (`<<: *anchor`) are merged into their
/// mapping (the mapping's own keys win).
fn parse_yaml(path: &Path, text: &str) -> Result<Value, ConfigError> {
    let error = |e: serde_yaml::Error| {
        // serde_yaml's message already names the key path, line and column.
        let message = e.to_string();
        match out_of_range(&message) {
            Some(message) => ConfigError::OutOfRange {
                path: path.to_path_buf(),
                message,
            },
            None => ConfigError::Yaml {
                path: path.to_path_buf(),
                message,
            },
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut value: Value = serde_yaml::from_str(text).map_err(error)?;
    value.apply_merge().map_err(error)?;
    Ok(value)
}

/// serde_yaml reads a whole number beyond 64 bits as a 128-bit one that no YAML value can hold,
/// and says so as "invalid type: integer `N` as u128, expected any YAML value": the user's
/// file is fine but the number is too large. Rewritten as that, naming the key the message
/// starts with (`targets[0].seed: ...`) and keeping its line and column.
fn out_of_range(message: &str) -> Option<String> {
    const HEAD: &str = "invalid type: integer `";
    let at = message.find(HEAD)?;
    let rest = &message[at + HEAD.len()..];
    let end = rest.find('`')?;
    let number = &rest[..end];
    let after = &rest[end + 1..];
    let tail = after
        .strip_prefix(" as u128, expected any YAML value")
        .or_else(|| after.strip_prefix(" as i128, expected any YAML value"))?;
    let limit = if number.starts_with('-') {
        format!("at least {}", i64::MIN)
    } else {
        format!("at most {}", u64::MAX)
    };
    let key = message[..at].trim().trim_end_matches(':');
    let key = if key.is_empty() {
        String::new()
    } else {
        format!("`{key}`: ")
    };
    Some(format!("{key}{number} is out of range ({limit}){tail}"))
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}

/// The top level's keys: those of [`TOP_LEVEL_KEYS`], and any starting with `x-`, which hold
/// YAML anchors for reuse further down the file (Docker Compose's extension fields) and are
/// otherwise ignored: an anchor must sit under some key, and every other unknown key is refused
/// so that a misspelt setting is not silently dropped.
fn check_top_level_keys(ctx: &Ctx, top: &Mapping) -> Result<(), ConfigError> {
    let mut checked = top.clone();
    checked.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("x-")));
    check_keys(ctx, "top level", "", &checked, TOP_LEVEL_KEYS).map_err(|e| match e {
        ConfigError::Invalid {
            path,
            entry,
            key,
            message,
        } => ConfigError::Invalid {
            path,
            entry,
            key,
            message: format!(
                "{message} (a key starting with `x-` may hold YAML anchors to reuse below, e.g. `x-short: &short {{ draws: 500 }}`)"
            ),
        },
        other => other,
    })
}

fn check_keys(
    ctx: &Ctx,
    entry: &str,
    prefix: &str,
    map: &Mapping,
    valid: &[&str],
) -> Result<(), ConfigError> {
    for k in map.keys() {
        let name = k.as_str().unwrap_or("");
        if !valid.contains(&name) {
            let key = if prefix.is_empty() {
                show_key(k)
            } else {
                format!("{prefix}.{}", show_key(k))
            };
            return Err(ctx.invalid(
                entry,
                &key,
                format!("unknown key; valid keys here: {}", valid.join(", ")),
            ));
        }
    }
    Ok(())
}

fn show_key(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn precision_of(ctx: &Ctx, top: &Mapping) -> Result<Precision, ConfigError> {
    let from_x64 = match top.get("jax_enable_x64") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(true)) => Some(Precision::F64),
        Some(Value::Bool(false)) => Some(Precision::F32),
        Some(other) => {
            return Err(ctx.invalid(
                "top level",
                "jax_enable_x64",
                format!("must be true or false, got {}", show(other)),
            ));
        }
    };
    let native = match top.get("precision") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "f64" => Some(Precision::F64),
        Some(Value::String(s)) if s == "f32" => Some(Precision::F32),
        Some(other) => {
            return Err(ctx.invalid(
                "top level",
                "precision",
                format!("must be f32 or f64, got {}", show(other)),
            ));
        }
    };
    match (from_x64, native) {
        (Some(a), Some(b)) if a != b => Err(ctx.invalid(
            "top level",
            "precision",
            format!(
                "`precision: {}` contradicts `jax_enable_x64: {}`; keep one of them",
                b.as_str(),
                a == Precision::F64
            ),
        )),
        (a, b) => Ok(b.or(a).unwrap_or_default()),
    }
}

/// Deserializes `value` into `T`, naming the key path of any problem.
fn typed<T: DeserializeOwned>(
    ctx: &Ctx,
    entry: &str,
    prefix: &str,
    value: Value,
    layers: &[Layer],
) -> Result<T, ConfigError> {
    typed_by(ctx, entry, prefix, value, layers, |d| T::deserialize(d))
}

/// One file's part of a merged section, for blaming a bad key on the file that wrote it: the
/// experiments file's overrides, its top-level `training:`/`posterior:`, or a preset file.
struct Layer<'a> {
    path: &'a Path,
    entry: String,
    /// What this layer set under the section (`None`: nothing).
    values: Option<&'a Value>,
}

impl<'a> Layer<'a> {
    fn preset(
        src: &'a PresetSource,
        kind: &str,
        name: &str,
        used_by: &str,
        values: &'a Value,
    ) -> Self {
        Layer {
            path: &src.origin,
            entry: format!("the {kind} preset `{name}` (used by {used_by})"),
            values: Some(values),
        }
    }
}

/// The layer (highest precedence first) that set `key` (dotted, within the section, with list
/// items as `widths[0]`), else the last one: a preset holds every key of its section, so a bad
/// key no override wrote is its.
fn blame<'l, 'a>(layers: &'l [Layer<'a>], key: &str) -> Option<&'l Layer<'a>> {
    // `widths[0]` is the key `widths`, then item 0 (an override replaces a whole list).
    let segments: Vec<&str> = key
        .split('.')
        .map(|k| k.split_once('[').map_or(k, |(name, _)| name))
        .filter(|k| !k.is_empty())
        .collect();
    let sets = |v: &Value| segments.iter().try_fold(v, |v, k| v.get(*k)).is_some();
    layers
        .iter()
        .find(|l| l.values.is_some_and(sets))
        .or(layers.last())
}

/// The error for `key` (dotted, `prefix` first) with `message`, named in the file that set it.
fn invalid_in(
    ctx: &Ctx,
    entry: &str,
    prefix: &str,
    key: &str,
    message: String,
    layers: &[Layer],
) -> ConfigError {
    let inner = key
        .strip_prefix(prefix)
        .map(|k| k.trim_start_matches('.'))
        .unwrap_or(key);
    match blame(layers, inner) {
        Some(layer) if layer.path != ctx.path => {
            let inner = if inner.is_empty() {
                "(the file)"
            } else {
                inner
            };
            ConfigError::invalid(layer.path, &layer.entry, inner, message)
        }
        Some(layer) => ConfigError::invalid(ctx.path, &layer.entry, key, message),
        None => ctx.invalid(entry, key, message),
    }
}

/// [`typed`] with the deserializing function given: a sampler's settings type is chosen by the
/// entry's `name` ([`SamplerConfig::deserialize_as`]). An error names the key it is about.
fn typed_by<T>(
    ctx: &Ctx,
    entry: &str,
    prefix: &str,
    value: Value,
    layers: &[Layer],
    deserialize: impl FnOnce(
        serde_path_to_error::Deserializer<'_, '_, Value>,
    ) -> Result<T, serde_yaml::Error>,
) -> Result<T, ConfigError> {
    let mut track = serde_path_to_error::Track::new();
    deserialize(serde_path_to_error::Deserializer::new(value, &mut track)).map_err(|e| {
        let inner = track.path().to_string();
        let key = if inner == "." || inner.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{inner}")
        };
        invalid_in(ctx, entry, prefix, &key, e.to_string(), layers)
    })
}

/// The first issue of a validated section (`prefix` its key in the messages), named in the
/// file that set the key.
fn first_invalid_in(
    ctx: &Ctx,
    entry: &str,
    prefix: &str,
    issues: Vec<Invalid>,
    layers: &[Layer],
) -> Result<(), ConfigError> {
    match issues.into_iter().next() {
        Some(i) => Err(invalid_in(ctx, entry, prefix, &i.path, i.message, layers)),
        None => Ok(()),
    }
}

fn first_invalid(ctx: &Ctx, entry: &str, issues: Vec<Invalid>) -> Result<(), ConfigError> {
    match issues.into_iter().next() {
        Some(i) => Err(ctx.invalid(entry, &i.path, i.message)),
        None => Ok(()),
    }
}

fn preset(
    ctx: &Ctx,
    entry: &str,
    kind: Kind,
    name: &str,
) -> Result<(Value, PresetSource), ConfigError> {
    match ctx.presets.load(kind, name)? {
        Some(src) => Ok((parse_yaml(&src.origin, &src.text)?, src)),
        None => Err(ConfigError::UnknownPreset(Box::new(
            super::error::UnknownPreset {
                path: ctx.path.to_path_buf(),
                entry: entry.to_string(),
                kind: kind.dir(),
                name: name.to_string(),
                choices: ctx.presets.names(kind).join(", "),
                looked: ctx.presets.describe(kind),
            },
        ))),
    }
}

fn preset_name<'v>(
    ctx: &Ctx,
    entry: &str,
    map: &'v Mapping,
    key: &str,
    default: Option<&'v str>,
) -> Result<String, ConfigError> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => match default {
            Some(d) => Ok(d.to_string()),
            None => {
                // A slip in the key (`dat: small`) reads as the key missing: name it.
                let slip = map
                    .keys()
                    .filter_map(Value::as_str)
                    .find(|k| *k != key && crate::invalid::edit_distance(k, key) <= 2);
                let hint =
                    slip.map_or(String::new(), |k| format!(" (`{k}` is not a key: a slip?)"));
                Err(ctx.invalid(
                    entry,
                    key,
                    format!("missing: name a {key} preset, e.g. `{key}: small`{hint}"),
                ))
            }
        },
        Some(other) => Err(ctx.invalid(
            entry,
            key,
            format!("must be a preset name, got {}", show(other)),
        )),
    }
}

/// The sweep-wide training and posterior settings every target starts from: workflow.yaml's,
/// with the experiments file's top-level `training:` and `posterior:` over them.
struct Defaults<'a> {
    training: Value,
    posterior: Value,
    /// The experiments file and its top level.
    file: &'a Path,
    top: &'a Mapping,
    workflow: &'a PresetSource,
    workflow_values: &'a Value,
}

impl Defaults<'_> {
    /// Where a target's `training`/`posterior` keys came from after its own overrides, highest
    /// precedence first: the experiments file's top level, then workflow.yaml.
    fn layers(&self, key: &str) -> [Layer<'_>; 2] {
        [
            Layer {
                path: self.file,
                entry: "top level".into(),
                values: self.top.get(key),
            },
            Layer {
                path: &self.workflow.origin,
                entry: format!("its `{key}` section"),
                values: self.workflow_values.get(key),
            },
        ]
    }
}

fn resolve_target(
    ctx: &Ctx,
    index: usize,
    entry_val: &Value,
    defaults: &Defaults,
    precision: Precision,
) -> Result<ResolvedTarget, ConfigError> {
    let mut label = format!("targets[{index}]");
    let Value::Mapping(entry) = entry_val else {
        return Err(ctx.invalid(&label, "", format!("a target entry must be a mapping like `{{ model: small, data: small, seed: 42 }}`, got {}", show(entry_val))));
    };
    let model_name = preset_name(ctx, &label, entry, "model", None)?;
    let data_name = preset_name(ctx, &label, entry, "data", None)?;
    let teacher_name = preset_name(ctx, &label, entry, "teacher", Some("_null"))?;
    let seed = match entry.get("seed") {
        None => 0,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
        Some(other) => {
            return Err(ctx.invalid(
                &label,
                "seed",
                format!("must be a non-negative integer, got {}", show(other)),
            ));
        }
    };
    label = format!("targets[{index}] (model: {model_name}, data: {data_name}, seed: {seed})");
    check_keys(ctx, &label, "", entry, TARGET_KEYS)?;

    let overrides = match entry.get("overrides") {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(m)) => m.clone(),
        Some(other) => {
            return Err(ctx.invalid(
                &label,
                "overrides",
                format!(
                    "must be a mapping like `{{ model: {{ depth: 6 }} }}`, got {}",
                    show(other)
                ),
            ));
        }
    };
    check_keys(ctx, &label, "overrides", &overrides, TARGET_OVERRIDE_KEYS)?;

    let section = |kind_key: &str, mut base: Value| -> Value {
        if let Some(o) = overrides.get(kind_key) {
            deep_merge(&mut base, o);
        }
        base
    };
    let (model_preset, model_src) = preset(ctx, &label, Kind::Model, &model_name)?;
    let (data_preset, data_src) = preset(ctx, &label, Kind::Data, &data_name)?;
    let (teacher_preset, teacher_src) = preset(ctx, &label, Kind::Teacher, &teacher_name)?;
    // Which file set each section's keys, highest precedence first.
    let from_entry = |key: &str| Layer {
        path: ctx.path,
        entry: label.clone(),
        values: overrides.get(key),
    };
    let model_layers = [
        from_entry("model"),
        Layer::preset(&model_src, "model", &model_name, &label, &model_preset),
    ];
    let data_layers = [
        from_entry("data"),
        Layer::preset(&data_src, "data", &data_name, &label, &data_preset),
    ];
    let teacher_layers = [
        from_entry("teacher"),
        Layer::preset(
            &teacher_src,
            "teacher",
            &teacher_name,
            &label,
            &teacher_preset,
        ),
    ];
    let [top, workflow] = defaults.layers("training");
    let training_layers = [from_entry("training"), top, workflow];
    let [top, workflow] = defaults.layers("posterior");
    let posterior_layers = [from_entry("posterior"), top, workflow];
    let model_val = section("model", model_preset.clone());
    let data_val = section("data", data_preset.clone());
    let teacher_val = section("teacher", teacher_preset.clone());
    let training_val = section("training", defaults.training.clone());
    let posterior_val = section("posterior", defaults.posterior.clone());

    let model: ModelConfig = typed(ctx, &label, "model", model_val, &model_layers)?;
    let data: DataConfig = typed(ctx, &label, "data", data_val, &data_layers)?;
    let teacher: TeacherConfig = typed(ctx, &label, "teacher", teacher_val, &teacher_layers)?;
    let training: TrainingConfig = typed(ctx, &label, "training", training_val, &training_layers)?;
    let posterior: PosteriorConfig =
        typed(ctx, &label, "posterior", posterior_val, &posterior_layers)?;

    let validated = |prefix: &str, layers: &[Layer], check: &dyn Fn(&mut Vec<Invalid>)| {
        let mut issues = Vec::new();
        check(&mut issues);
        first_invalid_in(ctx, &label, prefix, issues, layers)
    };
    validated("model", &model_layers, &|i| model.validate("model", i))?;
    validated("data", &data_layers, &|i| data.validate("data", i))?;
    validated("training", &training_layers, &|i| {
        training.validate("training", i)
    })?;
    validated("posterior", &posterior_layers, &|i| {
        posterior.validate("posterior", i)
    })?;

    let mut issues = Vec::new();
    if data.x_dist == XDist::LowdimManifold && data.manifold_dim > model.in_dim {
        issues.push(Invalid {
            path: "data.manifold_dim".into(),
            message: format!(
                "is {} but the inputs have only in_dim = {} dimensions",
                data.manifold_dim, model.in_dim
            ),
        });
    }
    // 0 is allowed: a teacher whose output is 0, so the data are pure noise (for a deep linear
    // student, a teacher of rank 0, a standard case of Aoyagi's formula).
    if !(teacher.weight_scale.is_finite() && teacher.weight_scale >= 0.0) {
        issues.push(Invalid {
            path: "teacher.weight_scale".into(),
            message: format!(
                "must be a number >= 0 (0: the data are pure noise), got {}",
                teacher.weight_scale
            ),
        });
    }
    first_invalid(ctx, &label, issues)?;

    let depth_set = teacher.depth.is_some();
    let teacher = resolve_teacher(&model, &teacher);
    let mut issues = Vec::new();
    // The count of widths is checked against a depth the user may not have written here.
    let depth_from = format!(
        "the teacher's depth is the model's, {}, unless `teacher.depth` sets it",
        teacher.model.depth
    );
    teacher.model.validate_with_depth_from(
        "teacher",
        (!depth_set).then_some(depth_from.as_str()),
        &mut issues,
    );
    first_invalid(ctx, &label, issues)?;
    let teacher = ResolvedTeacher {
        model: resolve_widths(teacher.model),
        weight_scale: teacher.weight_scale,
    };
    let model = resolve_widths(model);

    Ok(ResolvedTarget {
        config: TargetConfig {
            model,
            data,
            teacher,
            training,
            seed,
            precision,
        },
        posterior,
        label,
    })
}

/// The teacher's architecture: the student's, with every field the teacher sets replaced.
fn resolve_teacher(student: &ModelConfig, t: &TeacherConfig) -> ResolvedTeacher {
    let mut m = student.clone();
    if let Some(depth) = t.depth {
        m.depth = depth;
    }
    if let Some(w) = &t.widths {
        m.widths = Some(w.clone());
        m.target_params = None;
    } else if let Some(p) = t.target_params {
        m.widths = None;
        m.target_params = Some(p);
    } else if t.depth.is_some() && m.widths.as_ref().is_some_and(|w| w.len() != m.depth) {
        // A new depth with the student's explicit widths: repeat the first width per layer.
        let w0 = m
            .widths
            .as_ref()
            .and_then(|w| w.first().copied())
            .unwrap_or(1);
        m.widths = Some(vec![w0; m.depth]);
    }
    if let Some(a) = t.activation {
        m.activation = a;
    }
    if let Some(b) = t.bias {
        m.bias = b;
    }
    ResolvedTeacher {
        model: m,
        weight_scale: t.weight_scale,
    }
}

/// Fills `widths` from `target_params` (validated beforehand).
fn resolve_widths(mut m: ModelConfig) -> ModelConfig {
    if m.widths.is_none() {
        let widths = match m.target_params {
            Some(p) if m.depth > 0 => {
                vec![solve_width(m.in_dim, m.out_dim, m.depth, p, m.bias); m.depth]
            }
            _ => Vec::new(),
        };
        m.widths = Some(widths);
    }
    m
}

/// Number of parameters of an MLP with these hidden widths.
pub fn param_count(in_dim: usize, out_dim: usize, widths: &[usize], bias: bool) -> usize {
    let mut fan_in = in_dim;
    let mut total = 0;
    for &w in widths.iter().chain(std::iter::once(&out_dim)) {
        // Saturating: an absurd config must be refused with a message, not overflow.
        total = fan_in
            .saturating_mul(w)
            .saturating_add(if bias { w } else { 0 })
            .saturating_add(total);
        fan_in = w;
    }
    total
}

/// The one hidden width h (same for every layer) whose parameter count is closest to `target`:
/// (in+1)h + (depth−1)(h+1)h + (h+1)out with bias. Ties go to the smaller width.
pub fn solve_width(
    in_dim: usize,
    out_dim: usize,
    depth: usize,
    target: usize,
    bias: bool,
) -> usize {
    let count = |h: usize| param_count(in_dim, out_dim, &vec![h; depth], bias);
    // The count grows strictly with h, so a binary search finds the first h reaching the target.
    let (mut lo, mut hi) = (1usize, 1usize);
    while count(hi) < target && hi < (1 << 24) {
        hi *= 2;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if count(mid) < target {
            lo = mid + 1
        } else {
            hi = mid
        }
    }
    if lo > 1 && target.abs_diff(count(lo - 1)) <= count(lo).abs_diff(target) {
        lo - 1
    } else {
        lo
    }
}

/// Resolves one sampler entry, e.g. `{ name: hmc, overrides: { draws: 500 } }`, exactly as an
/// entry of an experiments file's `samplers:` list (preset lookup in `presets`, deep merge of the
/// overrides, typed, validated). `source` is the file messages name. `lambda-hat validate` uses
/// it so that what it checks is what a sweep would run.
pub fn resolve_sampler_entry(
    source: &Path,
    presets: &PresetDirs,
    entry: &Value,
) -> Result<SamplerConfig, ConfigError> {
    resolve_sampler(
        &Ctx {
            path: source,
            presets,
        },
        0,
        entry,
    )
}

fn resolve_sampler(
    ctx: &Ctx,
    index: usize,
    entry_val: &Value,
) -> Result<SamplerConfig, ConfigError> {
    let mut label = format!("samplers[{index}]");
    let Value::Mapping(entry) = entry_val else {
        return Err(ctx.invalid(
            &label,
            "",
            format!(
                "a sampler entry must be a mapping like `{{ name: hmc }}`, got {}",
                show(entry_val)
            ),
        ));
    };
    let name = match entry.get("name") {
        Some(Value::String(s)) => s.clone(),
        None => {
            return Err(ctx.invalid(
                &label,
                "name",
                format!("missing: name one of {}", SamplerConfig::NAMES.join(", ")),
            ));
        }
        Some(other) => {
            return Err(ctx.invalid(
                &label,
                "name",
                format!("must be a sampler name, got {}", show(other)),
            ));
        }
    };
    label = format!("samplers[{index}] (name: {name})");
    check_keys(ctx, &label, "", entry, SAMPLER_KEYS)?;
    let Some(kind) = SamplerKind::from_name(&name) else {
        return Err(ctx.invalid(
            &label,
            "name",
            format!(
                "unknown sampler `{name}`; valid samplers: {}",
                SamplerConfig::NAMES.join(", ")
            ),
        ));
    };
    let (preset_value, preset_src) = preset(ctx, &label, Kind::Sampler, &name)?;
    let mut value = preset_value.clone();
    match entry.get("overrides") {
        None | Some(Value::Null) => {}
        Some(o @ Value::Mapping(_)) => deep_merge(&mut value, o),
        Some(other) => {
            return Err(ctx.invalid(
                &label,
                "overrides",
                format!(
                    "must be a mapping like `{{ step_size: 1e-6 }}`, got {}",
                    show(other)
                ),
            ));
        }
    }
    let layers = [
        Layer {
            path: ctx.path,
            entry: label.clone(),
            values: entry.get("overrides"),
        },
        Layer::preset(&preset_src, "sampler", &name, &label, &preset_value),
    ];
    let cfg = typed_by(ctx, &label, "overrides", value, &layers, |d| {
        SamplerConfig::deserialize_as(kind, d)
    })?;
    let mut issues = Vec::new();
    cfg.validate("overrides", &mut issues);
    first_invalid_in(ctx, &label, "overrides", issues, &layers)?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {

    /// A number too large for 64 bits is valid YAML out of range, not "malformed YAML".
    #[test]
    fn a_huge_number_is_out_of_range_naming_its_key() {
        let path = Path::new("experiments.yaml");
        let text = "targets:\n  - { model: small, seed: 18446744073709551616 }\n";
        let e = parse_yaml(path, text).unwrap_err();
        assert!(matches!(e, ConfigError::OutOfRange { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("`targets[0].seed`: 18446744073709551616 is out of range (at most 18446744073709551615)"),
            "{msg}"
        );
        assert!(
            msg.contains("line 2") && !msg.contains("malformed"),
            "{msg}"
        );
        let e = parse_yaml(path, "seed: -99999999999999999999\n").unwrap_err();
        assert!(
            e.to_string().contains("at least -9223372036854775808"),
            "{e}"
        );
        let e = parse_yaml(path, "seed: [1\n").unwrap_err();
        assert!(matches!(e, ConfigError::Yaml { .. }), "{e}");
    }
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn store_root_expands_a_leading_tilde_to_home_and_nothing_else() {
        let home = Some(std::ffi::OsStr::new("/home/ada"));
        assert_eq!(expand_home("~", home).unwrap(), Path::new("/home/ada"));
        assert_eq!(expand_home("~/", home).unwrap(), Path::new("/home/ada"));
        assert_eq!(
            expand_home("~/scratch/runs", home).unwrap(),
            Path::new("/home/ada/scratch/runs")
        );
        // Only a leading tilde means home.
        assert_eq!(expand_home("runs/~x", home).unwrap(), Path::new("runs/~x"));
        assert_eq!(
            expand_home("/data/runs", home).unwrap(),
            Path::new("/data/runs")
        );
        let other_user = expand_home("~bob/runs", home).unwrap_err();
        assert!(other_user.contains("write the full path"), "{other_user}");
        let no_home = expand_home("~/runs", None).unwrap_err();
        assert!(no_home.contains("HOME is not set"), "{no_home}");
    }

    #[test]
    fn an_assignment_sets_a_dotted_key_and_creates_mappings_on_the_way() {
        let mut root = yaml("store_root: runs\nposterior: { gamma: 1.0 }\n");
        apply_assignment(&mut root, "posterior.gamma=10").unwrap();
        apply_assignment(&mut root, "training.steps=500").unwrap();
        apply_assignment(&mut root, "store_root=runs b").unwrap();
        apply_assignment(&mut root, "samplers=[{name: hmc}]").unwrap();
        let want = yaml(
            "store_root: runs b\nposterior: { gamma: 10 }\ntraining: { steps: 500 }\nsamplers: [{name: hmc}]\n",
        );
        assert_eq!(root, want);
    }

    /// An overlong store_root is refused at validation, not by the first job's write.
    #[test]
    fn an_overlong_store_root_is_refused() {
        let cwd = Path::new("/home/user/sweep");
        assert!(check_path_length(Path::new("runs"), Some(cwd)).is_ok());
        assert!(check_path_length(&PathBuf::from("a".repeat(255)), Some(cwd)).is_ok());
        let e = check_path_length(&PathBuf::from("a".repeat(300)), Some(cwd)).unwrap_err();
        assert!(e.contains("300 bytes") && e.contains("255"), "{e}");
        let deep = vec!["b".repeat(200); 20].join("/");
        let e = check_path_length(Path::new(&deep), Some(cwd)).unwrap_err();
        assert!(e.contains("3839 bytes"), "{e}");
        let e = check_path_length(Path::new(&format!("/{}", "c".repeat(256))), None);
        assert!(e.is_err());
        // Through the whole file: the message names store_root.
        let text = format!(
            "store_root: {}\ntargets: [{{ model: small, data: small, seed: 1 }}]\nsamplers: [{{ name: sgld }}]\n",
            "a".repeat(300)
        );
        let e = parse_sweep(
            Path::new("e.yaml"),
            &text,
            &PresetDirs::for_experiments_file(Path::new("e.yaml")),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("store_root") && e.contains("255"), "{e}");
    }

    #[test]
    fn top_level_keys_starting_with_x_hold_anchors_and_other_unknown_keys_are_refused() {
        let parse = |text: &str| {
            parse_sweep(
                Path::new("e.yaml"),
                text,
                &PresetDirs::for_experiments_file(Path::new("e.yaml")),
            )
        };
        let body = "targets: [{ model: small, data: small, seed: 1 }]\nsamplers:\n  - { name: hmc, overrides: *short }\n";
        let sweep = parse(&format!("x-short: &short {{ draws: 123 }}\n{body}")).unwrap();
        assert!(
            format!("{:?}", sweep.samplers[0]).contains("draws: 123"),
            "{:?}",
            sweep.samplers[0]
        );
        let e = parse(&format!("short: &short {{ draws: 123 }}\n{body}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("short: unknown key"), "{e}");
        assert!(e.contains("a key starting with `x-`"), "{e}");
    }

    /// List items have no --config address; the message says to give the whole list.
    #[test]
    fn an_assignment_to_a_list_item_says_to_give_the_whole_list() {
        let mut root = yaml("targets: [{ model: small, seed: 1 }]\n");
        for a in [
            "targets[0].seed=5",
            "targets[0]={seed: 5}",
            "targets.0.seed=5",
        ] {
            let e = apply_assignment(&mut root, a).unwrap_err();
            assert!(
                e.contains("`targets` is a list") && e.contains("--config 'targets=["),
                "{a}: {e}"
            );
        }
        assert_eq!(root, yaml("targets: [{ model: small, seed: 1 }]\n"));
    }

    #[test]
    fn a_mapping_value_merges_into_the_section_as_snakemake_does() {
        let mut root =
            yaml("training: { steps: 4000, learning_rate: 0.001 }\nposterior: { gamma: 100 }\n");
        apply_assignment(&mut root, "training={learning_rate: 0.01}").unwrap();
        apply_assignment(&mut root, "posterior={beta0: 2, gamma: 5}").unwrap();
        // Not a mapping on either side: the value replaces.
        apply_assignment(&mut root, "training.steps=[1]").unwrap();
        let want = yaml(
            "training: { steps: [1], learning_rate: 0.01 }\nposterior: { gamma: 5, beta0: 2 }\n",
        );
        assert_eq!(root, want);
        // `null` still clears a section.
        apply_assignment(&mut root, "posterior=null").unwrap();
        assert_eq!(root["posterior"], Value::Null);
    }

    #[test]
    fn a_bad_assignment_says_what_is_wrong() {
        let mut root = yaml("store_root: runs\n");
        let err = |root: &mut Value, a: &str| apply_assignment(root, a).unwrap_err();
        assert!(err(&mut root, "store_root").contains("KEY=VALUE"));
        let path = err(&mut root, "runs/targets/*/meta.json");
        assert!(path.contains("put output paths first"), "{path}");
        assert!(err(&mut root, "posterior..gamma=1").contains("not a key"));
        assert!(err(&mut root, "=1").contains("not a key"));
        assert!(err(&mut root, "store_root.x=1").contains("`store_root` is the string"));
        assert!(err(&mut root, "a=[1").contains("not YAML"));
        assert_eq!(
            root,
            yaml("store_root: runs\n"),
            "failed assignments change nothing"
        );
    }
}
