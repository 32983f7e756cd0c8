//! Preset YAML files: `config/{model,data,teacher,sampler}/NAME.yaml` and `config/workflow.yaml`.
//!
//! A preset is looked up next to the experiments file first (`<dir of experiments file>/model/NAME.yaml`
//! and, when the experiments file lives elsewhere, `./config/model/NAME.yaml`), then among the
//! presets compiled into the binary, so `lambda-hat` works from any folder and users can add or
//! shadow presets without rebuilding.

use std::path::{Path, PathBuf};

use super::ConfigError;
use super::schema::SamplerKind;

/// The preset families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Model,
    Data,
    Teacher,
    Sampler,
}

impl Kind {
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::Data => "data",
            Kind::Teacher => "teacher",
            Kind::Sampler => "sampler",
        }
    }
}

/// (kind, name, YAML) of every preset compiled into the binary.
const BUILTIN: &[(Kind, &str, &str)] = &[
    (
        Kind::Model,
        "small",
        include_str!("../../config/model/small.yaml"),
    ),
    (
        Kind::Model,
        "base",
        include_str!("../../config/model/base.yaml"),
    ),
    (
        Kind::Model,
        "wide",
        include_str!("../../config/model/wide.yaml"),
    ),
    (
        Kind::Model,
        "huge",
        include_str!("../../config/model/huge.yaml"),
    ),
    (
        Kind::Data,
        "small",
        include_str!("../../config/data/small.yaml"),
    ),
    (
        Kind::Data,
        "base",
        include_str!("../../config/data/base.yaml"),
    ),
    (
        Kind::Data,
        "large",
        include_str!("../../config/data/large.yaml"),
    ),
    (
        Kind::Teacher,
        "_null",
        include_str!("../../config/teacher/_null.yaml"),
    ),
    (
        Kind::Teacher,
        "small",
        include_str!("../../config/teacher/small.yaml"),
    ),
    (
        Kind::Teacher,
        "base",
        include_str!("../../config/teacher/base.yaml"),
    ),
];

const BUILTIN_WORKFLOW: &str = include_str!("../../config/workflow.yaml");

/// Where presets are searched, in order, before the built-in ones.
#[derive(Debug, Clone)]
pub struct PresetDirs {
    dirs: Vec<PathBuf>,
}

/// A preset's YAML text and where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct PresetSource {
    pub origin: PathBuf,
    pub text: String,
}

impl PresetDirs {
    /// Preset directories for an experiments file: its own directory, then `./config`.
    pub fn for_experiments_file(path: &Path) -> Self {
        let mut dirs = Vec::new();
        if let Some(parent) = path.parent() {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            dirs.push(parent.to_path_buf());
        }
        let local = PathBuf::from("config");
        if !dirs.iter().any(|d| same_dir(d, &local)) {
            dirs.push(local);
        }
        PresetDirs { dirs }
    }

    /// The preset `kind/name`, from disk if present there, else built in.
    pub fn load(&self, kind: Kind, name: &str) -> Result<Option<PresetSource>, ConfigError> {
        // A preset name is a file stem, never a path: refuse separators so `../x` cannot escape.
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Ok(None);
        }
        for dir in &self.dirs {
            let path = dir.join(kind.dir()).join(format!("{name}.yaml"));
            if path.is_file() {
                let text = read(&path)?;
                return Ok(Some(PresetSource { origin: path, text }));
            }
        }
        Ok(builtin(kind, name).map(|text| PresetSource {
            origin: PathBuf::from(format!("<built-in {}/{name}.yaml>", kind.dir())),
            text: text.to_string(),
        }))
    }

    /// `workflow.yaml` from the first preset directory that has one, else the built-in one.
    pub fn workflow(&self) -> Result<PresetSource, ConfigError> {
        for dir in &self.dirs {
            let path = dir.join("workflow.yaml");
            if path.is_file() {
                return Ok(PresetSource {
                    text: read(&path)?,
                    origin: path,
                });
            }
        }
        Ok(PresetSource {
            origin: PathBuf::from("<built-in workflow.yaml>"),
            text: BUILTIN_WORKFLOW.to_string(),
        })
    }

    /// Every preset name of `kind` available (on disk or built in), sorted.
    pub fn names(&self, kind: Kind) -> Vec<String> {
        let mut names: Vec<String> = builtin_names(kind).map(String::from).collect();
        for dir in &self.dirs {
            if let Ok(entries) = std::fs::read_dir(dir.join(kind.dir())) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "yaml")
                        && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
                    {
                        names.push(stem.to_string());
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// The directories searched, for messages.
    pub fn describe(&self, kind: Kind) -> String {
        self.dirs
            .iter()
            .map(|d| format!("{}/", d.join(kind.dir()).display()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The built-in preset `kind/name`: the samplers' come from the sampler registry, the others
/// from [`BUILTIN`].
fn builtin(kind: Kind, name: &str) -> Option<&'static str> {
    match kind {
        Kind::Sampler => SamplerKind::from_name(name).map(SamplerKind::builtin_preset),
        _ => BUILTIN
            .iter()
            .find(|(k, n, _)| *k == kind && *n == name)
            .map(|(_, _, text)| *text),
    }
}

/// The names of the built-in presets of `kind`.
fn builtin_names(kind: Kind) -> impl Iterator<Item = &'static str> {
    let samplers = SamplerKind::ALL
        .into_iter()
        .filter(move |_| kind == Kind::Sampler)
        .map(SamplerKind::name);
    let others = BUILTIN
        .iter()
        .filter(move |(k, _, _)| *k == kind)
        .map(|(_, n, _)| *n);
    samplers.chain(others)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
        hint: "check the file exists and is readable".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_preset_is_valid_yaml() {
        let all = [Kind::Model, Kind::Data, Kind::Teacher, Kind::Sampler];
        for kind in all {
            let names: Vec<&str> = builtin_names(kind).collect();
            assert!(!names.is_empty(), "no built-in {} presets", kind.dir());
            for name in names {
                let text = builtin(kind, name).unwrap();
                let v: Result<serde_yaml::Value, _> = serde_yaml::from_str(text);
                assert!(v.is_ok(), "{}/{name}.yaml: {:?}", kind.dir(), v.err());
            }
        }
        assert!(serde_yaml::from_str::<serde_yaml::Value>(BUILTIN_WORKFLOW).is_ok());
    }

    #[test]
    fn path_like_names_are_not_presets() {
        let dirs = PresetDirs::for_experiments_file(Path::new("config/experiments.yaml"));
        assert!(dirs.load(Kind::Model, "../model/small").unwrap().is_none());
        assert!(dirs.load(Kind::Model, "small").unwrap().is_some());
    }
}
