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

    #[error("malformed YAML in {path}: {}", plain(.message))]
    Yaml { path: PathBuf, message: String },

    /// Valid YAML with a whole number no setting can hold (`seed: 18446744073709551616`): the
    /// reader refuses it while parsing, but the file is not malformed.
    #[error("number out of range in {path}: {message}")]
    OutOfRange { path: PathBuf, message: String },

    #[error("invalid config in {path}, {entry}{}: {}", key_part(.key), plain(.message))]
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

/// serde's words for types, in a user's words: `expected usize` names a Rust type the user never
/// wrote, and YAML 1.1's `yes`/`no` (PyYAML's booleans) are text to the YAML 1.2 reader.
pub fn plain(message: &str) -> String {
    const WORDS: [(&str, &str); 11] = [
        (
            " as u128, expected any YAML value",
            " is too large (whole numbers here are at most 18446744073709551615)",
        ),
        ("expected usize", "expected a whole number ≥ 0"),
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected u32", "expected a whole number ≥ 0"),
        ("expected u16", "expected a whole number ≥ 0"),
        ("expected u8", "expected a whole number ≥ 0"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        (
            "expected a boolean",
            "expected a boolean: true or false (yes/no/on/off are text in YAML 1.2)",
        ),
    ];
    let mut out = message.to_string();
    for (rust, user) in WORDS {
        out = out.replace(rust, user);
    }
    // `expected struct TrainingConfig`: a mapping of keys, whatever the Rust name.
    while let Some(at) = out.find("expected struct ") {
        let name_start = at + "expected struct ".len();
        let name_end = out[name_start..]
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .map_or(out.len(), |e| name_start + e);
        out.replace_range(at..name_end, "expected a mapping (`key: value` entries)");
    }
    out
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

/// `: key` after the entry, or nothing for a problem with the entry as a whole (a sampler
/// written as a bare string), which would otherwise read `"samplers[0]: : …"`.
fn key_part(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(": {key}")
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn rust_type_names_become_words_a_user_wrote() {
        assert_eq!(
            plain("invalid value: integer `-5`, expected usize"),
            "invalid value: integer `-5`, expected a whole number ≥ 0"
        );
        assert_eq!(
            plain("invalid type: sequence, expected struct TrainingConfig at line 1"),
            "invalid type: sequence, expected a mapping (`key: value` entries) at line 1"
        );
        assert!(plain("invalid type: string \"no\", expected a boolean").contains("true or false"));
        assert!(
            plain("invalid type: integer `99999999999999999999` as u128, expected any YAML value")
                .contains("99999999999999999999` is too large")
        );
        assert_eq!(plain("unknown field `stepz`"), "unknown field `stepz`");
    }
}
