//! Job resources → `#SBATCH` flags, validated, plus the shell quoting every value goes through.
//!
//! Input: a rule's [`ResourceMap`] (already layered: rule defaults, profile, command line) and
//! the profile's `slurm-extra`. Output: `(flag, quoted value)` pairs for the templates, or a
//! [`FlagError`] naming the resource, its value and how to fix it. Pure: no process, no file.
//!
//! Everything is checked at plan time, before the first `sbatch`, so a typo in a partition
//! name or a value with shell metacharacters (`debug; rm -rf ~`) stops the sweep before anything
//! is submitted. Values that pass are still shell-quoted: validation keeps out what SLURM would
//! not understand anyway, quoting makes sure nothing can ever reach a shell unquoted.

use super::super::resources::{ResourceMap, ResourceValue};
use crate::plan::Rule;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlagError {
    #[error(
        "invalid {rule} resource {name}={value:?}: {why}.\n  Fix it in the profile's default-resources/set-resources or on the command line (--set-resources {rule}:{name}=...)."
    )]
    Value {
        rule: &'static str,
        name: String,
        value: String,
        why: String,
    },
    #[error(
        "invalid slurm_extra {value:?}: {why}.\n  slurm_extra takes sbatch options like \"--exclusive --nice=10\"; lambda-hat sets --job-name, --output, --array, --dependency and --requeue itself."
    )]
    Extra { value: String, why: String },
}

/// Resources that become sbatch flags: (resource, flag, kind of value).
const MAPPING: &[(&str, &str, Kind)] = &[
    ("slurm_partition", "-p", Kind::Names),
    ("slurm_account", "-A", Kind::Name),
    ("runtime", "-t", Kind::Positive),
    ("mem_mb", "--mem", Kind::Positive),
    ("mem_mb_per_cpu", "--mem-per-cpu", Kind::Positive),
    ("cpus_per_task", "-c", Kind::Positive),
    ("gpu", "--gpus", Kind::Positive),
    ("gres", "--gres", Kind::Gres),
    ("constraint", "-C", Kind::Constraint),
    ("qos", "--qos", Kind::Name),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// One SLURM name: partition, account, QOS.
    Name,
    /// Comma-separated names (sbatch accepts several partitions).
    Names,
    Positive,
    /// `gpu:a100:2,shard:1`.
    Gres,
    /// Feature expression: names joined by `&`, `|`, `,`, with `[]`, `()`, `*N`, `!`.
    Constraint,
}

/// Options the executor sets itself; a user passing them would break tracking or retries.
const RESERVED: &[&str] = &[
    "-J",
    "--job-name",
    "-o",
    "--output",
    "-e",
    "--error",
    "-a",
    "--array",
    "-d",
    "--dependency",
    "--requeue",
    "--no-requeue",
    "--parsable",
    "--wrap",
    "-W",
    "--wait",
];

/// sbatch options that lambda-hat sets from a job's resources: in `slurm_extra` they would
/// silently override the resource (`--mem=1` beat `mem_mb`), so they are refused there with the
/// resource to set instead.
const FROM_RESOURCES: &[(&str, &str)] = &[
    ("--partition", "slurm_partition"),
    ("--account", "slurm_account"),
    ("--time", "runtime"),
    ("--mem", "mem_mb"),
    ("--mem-per-cpu", "mem_mb_per_cpu"),
    ("--cpus-per-task", "cpus_per_task"),
    ("--gpus", "gpu"),
    ("--gres", "gres"),
    ("--constraint", "constraint"),
    ("--qos", "qos"),
];

/// Why `opt` (a long option, `--name`) may not appear in `slurm_extra`, if it may not. sbatch
/// accepts any unambiguous prefix of a long option (`--ou=` is `--output=`), so a prefix of a
/// reserved option counts as that option.
fn refused_extra(opt: &str) -> Option<String> {
    let names = |full: &str| full == opt || (opt.len() > 2 && full.starts_with(opt));
    if let Some(full) = RESERVED.iter().find(|r| r.starts_with("--") && names(r)) {
        return Some(if *full == opt {
            format!("{opt} is set by lambda-hat itself")
        } else {
            format!("{opt} is how sbatch reads {full}, which lambda-hat sets itself")
        });
    }
    // An exact match of a longer, unreserved option (`--mem-bind`) is not a prefix of these.
    FROM_RESOURCES
        .iter()
        .find(|(full, _)| names(full))
        .map(|(full, resource)| {
            format!("{full} comes from the resource {resource}: set {resource} instead (default-resources, set-resources or --set-resources)")
        })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn check_text(kind: Kind, v: &str) -> Result<(), String> {
    let ok = match kind {
        Kind::Name => !v.is_empty() && v.chars().all(is_name_char),
        Kind::Names => v
            .split(',')
            .all(|p| !p.is_empty() && p.chars().all(is_name_char)),
        Kind::Gres => {
            !v.is_empty()
                && v.chars()
                    .all(|c| is_name_char(c) || matches!(c, ':' | ',' | '/'))
        }
        Kind::Constraint => {
            !v.is_empty()
                && v.chars().all(|c| {
                    is_name_char(c)
                        || matches!(c, '&' | '|' | ',' | '[' | ']' | '(' | ')' | '*' | '!' | ':')
                })
        }
        Kind::Positive => false,
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        Kind::Name => "expected a SLURM name (letters, digits, _ - .)".into(),
        Kind::Names => "expected SLURM names separated by commas (letters, digits, _ - .)".into(),
        Kind::Gres => "expected a GRES list like gpu:a100:2 (letters, digits, _ - . : , /)".into(),
        Kind::Constraint => {
            "expected a feature expression like \"skylake&ib\" (letters, digits and & | , [ ] ( ) * ! :)"
                .into()
        }
        Kind::Positive => "expected a positive integer".into(),
    })
}

/// Quotes `s` for a POSIX shell (and for sbatch's own `#SBATCH` line parser, which understands
/// the same `'...'` and `'\''` forms): `it's` → `'it'\''s'`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `#SBATCH` flags of a rule's jobs: `(flag, shell-quoted value)` in a stable order.
pub fn sbatch_flags(
    rule: Rule,
    res: &ResourceMap,
    extra: &[String],
) -> Result<Vec<(String, String)>, FlagError> {
    let bad = |name: &str, value: &ResourceValue, why: &str| FlagError::Value {
        rule: rule.name(),
        name: name.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    };
    if res.contains_key("mem_mb") && res.contains_key("mem_mb_per_cpu") {
        return Err(bad(
            "mem_mb_per_cpu",
            &res["mem_mb_per_cpu"],
            "set either mem_mb or mem_mb_per_cpu, not both (sbatch refuses --mem with --mem-per-cpu)",
        ));
    }
    let mut flags = Vec::new();
    for (name, flag, kind) in MAPPING {
        let Some(value) = res.get(*name) else {
            continue;
        };
        let text = match (kind, value) {
            (Kind::Positive, ResourceValue::Int(i)) if *i > 0 => i.to_string(),
            (Kind::Positive, ResourceValue::Int(0)) if *name == "gpu" => continue,
            (Kind::Positive, _) => return Err(bad(name, value, "expected a positive integer")),
            (_, ResourceValue::Text(t)) => {
                check_text(*kind, t).map_err(|why| bad(name, value, &why))?;
                t.clone()
            }
            (_, ResourceValue::Int(i)) => {
                // A numeric partition or account name (`qos: 1`) is still a name.
                let t = i.to_string();
                check_text(*kind, &t).map_err(|why| bad(name, value, &why))?;
                t
            }
        };
        flags.push((flag.to_string(), shell_quote(&text)));
    }
    let mut words = extra.to_vec();
    if let Some(v) = res.get("slurm_extra") {
        words.extend(parse_extra(&v.to_string())?);
    }
    for w in words {
        // Each word becomes its own `#SBATCH` line: `--opt=value` or a bare `--flag`.
        flags.push((w, String::new()));
    }
    Ok(flags)
}

/// Splits and validates `slurm_extra`: whitespace-separated long options, `--name` or
/// `--name=value`, values of safe characters only. Each word ends up alone on an `#SBATCH` line,
/// so no quoting is needed once the characters are restricted.
pub fn parse_extra(text: &str) -> Result<Vec<String>, FlagError> {
    let bad = |why: String| FlagError::Extra {
        value: text.to_string(),
        why,
    };
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let (opt, value) = match word.split_once('=') {
            Some((o, v)) => (o, Some(v)),
            None => (word, None),
        };
        let name_ok = opt.len() > 2
            && opt.starts_with("--")
            && opt[2..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !name_ok {
            return Err(bad(format!(
                "`{word}` is not a long option like --exclusive or --nice=10 (write short options in long form)"
            )));
        }
        if let Some(why) = refused_extra(opt) {
            return Err(bad(why));
        }
        if let Some(v) = value
            && (v.is_empty()
                || !v.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '_' | '-' | '.' | ',' | ':' | '/' | '@' | '%' | '+' | '=')
                }))
        {
            return Err(bad(format!(
                "the value of {opt} may only contain letters, digits and _ - . , : / @ % + ="
            )));
        }
        out.push(word.to_string());
    }
    Ok(out)
}

/// An integer resource of a job (mem_mb, runtime, ...), if set.
pub fn int_resource(res: &ResourceMap, name: &str) -> Option<i64> {
    match res.get(name) {
        Some(ResourceValue::Int(i)) => Some(*i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn slurm_extra_refuses_abbreviations_of_reserved_options_and_resource_options() {
        for (word, why) in [
            ("--ou=/tmp/x", "--output"),
            ("--job=x", "--job-name"),
            ("--dep=afterok:1", "--dependency"),
            ("--arr=0-3", "--array"),
            ("--output=x", "set by lambda-hat"),
            ("--mem=1", "mem_mb"),
            ("--me=1", "mem_mb"),
            ("--time=5", "runtime"),
            ("--cpus-per=2", "cpus_per_task"),
        ] {
            let e = parse_extra(word).unwrap_err().to_string();
            assert!(e.contains(why), "{word}: {e}");
        }
        for ok in [
            "--exclusive",
            "--nice=10",
            "--mail-type=END",
            "--mem-bind=local",
            "--time-min=10",
        ] {
            assert!(parse_extra(ok).is_ok(), "{ok}");
        }
    }

    fn res(pairs: &[(&str, ResourceValue)]) -> ResourceMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    }

    fn text(s: &str) -> ResourceValue {
        ResourceValue::Text(s.into())
    }

    #[test]
    fn maps_every_resource_to_its_flag() {
        let r = res(&[
            ("slurm_partition", text("short,long")),
            ("slurm_account", text("proj-42")),
            ("runtime", ResourceValue::Int(90)),
            ("mem_mb", ResourceValue::Int(4000)),
            ("cpus_per_task", ResourceValue::Int(4)),
            ("gpu", ResourceValue::Int(1)),
            ("gres", text("gpu:a100:1")),
            ("constraint", text("skylake&ib")),
            ("qos", text("normal")),
            ("slurm_extra", text("--exclusive --nice=10")),
            ("custom_limit", ResourceValue::Int(3)),
        ]);
        let flags = sbatch_flags(Rule::RunSampler, &r, &["--mail-type=END".into()]).unwrap();
        let f: Vec<(&str, &str)> = flags
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            f,
            vec![
                ("-p", "'short,long'"),
                ("-A", "'proj-42'"),
                ("-t", "'90'"),
                ("--mem", "'4000'"),
                ("-c", "'4'"),
                ("--gpus", "'1'"),
                ("--gres", "'gpu:a100:1'"),
                ("-C", "'skylake&ib'"),
                ("--qos", "'normal'"),
                ("--mail-type=END", ""),
                ("--exclusive", ""),
                ("--nice=10", ""),
            ]
        );
    }

    #[test]
    fn refuses_shell_metacharacters_and_bad_numbers() {
        let e = sbatch_flags(
            Rule::BuildTarget,
            &res(&[("slurm_partition", text("debug; rm -rf ~"))]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("build_target")
                && e.contains("slurm_partition")
                && e.contains("debug; rm -rf ~"),
            "{e}"
        );
        assert!(sbatch_flags(Rule::RunSampler, &res(&[("mem_mb", text("lots"))]), &[]).is_err());
        assert!(
            sbatch_flags(
                Rule::RunSampler,
                &res(&[("runtime", ResourceValue::Int(0))]),
                &[]
            )
            .is_err()
        );
        assert!(
            sbatch_flags(
                Rule::RunSampler,
                &res(&[
                    ("mem_mb", ResourceValue::Int(1)),
                    ("mem_mb_per_cpu", ResourceValue::Int(1))
                ]),
                &[]
            )
            .is_err()
        );
        assert!(
            sbatch_flags(Rule::RunSampler, &res(&[("gres", text("gpu:1 $(x)"))]), &[]).is_err()
        );
    }

    #[test]
    fn slurm_extra_is_restricted_to_safe_long_options() {
        assert_eq!(
            parse_extra("--exclusive  --nice=10").unwrap(),
            vec!["--exclusive", "--nice=10"]
        );
        for bad in [
            "-x",
            "--nice=$(id)",
            "--output=x",
            "--job-name=a",
            "--dependency=afterok:1",
            "exclusive",
            "--comment='a b'",
        ] {
            assert!(parse_extra(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's $x"), r"'it'\''s $x'");
    }
}
