//! Errors in the user's configuration: what is wrong, where (file, entry, key path) and how to
//! fix it. Every variant renders as one message that stands on its own.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}\n  hint: {hint}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
        hint: String,
    },

    #[error("malformed YAML in {path}: {message}")]
    Yaml { path: PathBuf, message: String },

    #[error("invalid config in {path}, {entry}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        /// e.g. `targets[1] (model: base, data: base, seed: 42)` or `top level`.
        entry: String,
        /// Dotted key path, e.g. `overrides.model.activation`.
        key: String,
        message: String,
    },

    #[error(
        "unknown {kind} preset `{name}` in {path}, {entry}\n  valid {kind} presets: {choices}\n  (looked in {looked} and the presets built into lambda-hat)",
        kind = .0.kind, name = .0.name, path = .0.path.display(), entry = .0.entry, choices = .0.choices, looked = .0.looked
    )]
    UnknownPreset(Box<UnknownPreset>),

    #[error("{path}: {message}")]
    Sweep { path: PathBuf, message: String },
}

impl ConfigError {
    pub fn invalid(
        path: &std::path::Path,
        entry: &str,
        key: &str,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            entry: entry.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Details of [`ConfigError::UnknownPreset`] (boxed: errors travel by value through every layer).
#[derive(Debug)]
pub struct UnknownPreset {
    pub path: PathBuf,
    pub entry: String,
    pub kind: &'static str,
    pub name: String,
    pub choices: String,
    pub looked: String,
}
