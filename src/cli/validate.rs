//! `lambda-hat validate`: flags → sampler presets → checks → a table (or JSON) and an exit code.
//!
//! Sampler configs are resolved as a sweep's `samplers:` entries would be (preset next to
//! `--configfile`, else `./config`, else built in; plus `--quick`'s overrides and `--seed`), so
//! a researcher checks exactly what their sweep will run. Cases are built once each, in the
//! chosen precision, and every sampler runs on each. Progress goes to stderr (unless `-q`), the
//! report to `out`. A failed check is [`CliError::ValidationFailed`] (exit 1); bad flags are
//! clap's or [`CliError::Usage`] (exit 2).

use std::io::Write;
use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::CliError;
use super::args::ValidateArgs;
use super::sweep::DEFAULT_CONFIGFILE;
use crate::config::experiments::resolve_sampler_entry;
use crate::config::presets::{Kind, PresetDirs};
use crate::config::schema::{SamplerConfig, SamplerKind};
use crate::numeric::Real;
use crate::validate::table::{CaseInfo, Report, SamplerInfo, render_text};
use crate::validate::{Case, check, quick};

pub fn run(
    args: &ValidateArgs,
    configfile: Option<&Path>,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let cases = unique(&args.cases)
        .iter()
        .map(|name| {
            Case::from_name(name).ok_or_else(|| {
                CliError::Usage(format!(
                    "unknown case `{name}`; valid cases: {}",
                    Case::NAMES.join(", ")
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let samplers = resolve_samplers(args, configfile)?;
    let report = match args.precision.as_str() {
        "f32" => check_all::<f32>(&cases, samplers, args.quick, quiet)?,
        "f64" => check_all::<f64>(&cases, samplers, args.quick, quiet)?,
        other => {
            return Err(CliError::Usage(format!(
                "unknown precision `{other}`; valid: f32, f64"
            )));
        }
    };
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Usage(format!("cannot encode the report as JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        render_text(&report)
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::io("cannot write the validation report", e))?;
    if report.passed {
        return Ok(());
    }
    let failed: Vec<String> = report
        .failures()
        .map(|r| format!("{} on {}", r.sampler, r.case))
        .collect();
    Err(CliError::ValidationFailed(format!(
        "validation failed: {} of {} checks out of bounds ({})",
        failed.len(),
        report.rows.len(),
        failed.join(", ")
    )))
}

/// `names` without repeats, in first-seen order.
fn unique(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// Each named sampler's preset with the quick overrides and seed, resolved like a sweep entry.
fn resolve_samplers(
    args: &ValidateArgs,
    configfile: Option<&Path>,
) -> Result<Vec<SamplerInfo>, CliError> {
    if let Some(path) = configfile
        && !path.is_file()
    {
        // The file itself is not read, but a typo would silently fall back to other presets.
        return Err(CliError::Usage(format!(
            "--configfile {}: no such file (validate uses the sampler presets next to it)",
            path.display()
        )));
    }
    let source = configfile.unwrap_or(Path::new(DEFAULT_CONFIGFILE));
    let presets = PresetDirs::for_experiments_file(source);
    let mut out = Vec::new();
    for name in unique(&args.samplers) {
        // clap lets only the registry's names through; an unknown one is still an error here.
        let kind = SamplerKind::from_name(&name).ok_or_else(|| {
            CliError::Usage(format!(
                "unknown sampler `{name}`; valid samplers: {}",
                SamplerConfig::NAMES.join(", ")
            ))
        })?;
        let mut overrides = if args.quick {
            quick::overrides(kind)
        } else {
            Value::Mapping(Mapping::new())
        };
        if let (Some(seed), Value::Mapping(m)) = (args.seed, &mut overrides) {
            m.insert("seed".into(), seed.into());
        }
        let mut entry = Mapping::new();
        entry.insert("name".into(), name.clone().into());
        entry.insert("overrides".into(), overrides);
        let config = resolve_sampler_entry(source, &presets, &Value::Mapping(entry))?;
        let preset = presets
            .load(Kind::Sampler, &name)?
            .map(|p| p.origin.display().to_string())
            .unwrap_or_default();
        out.push(SamplerInfo {
            name: config.name(),
            preset,
            config,
        });
    }
    Ok(out)
}

fn check_all<F: Real>(
    cases: &[Case],
    samplers: Vec<SamplerInfo>,
    quick: bool,
    quiet: bool,
) -> Result<Report, CliError> {
    let mut infos = Vec::new();
    let mut rows = Vec::new();
    for &case in cases {
        if !quiet {
            crate::terminal::note!("validate: building {} ({})", case.name(), case.describe());
        }
        let built = crate::validate::cases::build::<F>(case)?;
        infos.push(CaseInfo::of(&built));
        for s in &samplers {
            let row = check::run(&built, &s.config)?;
            if !quiet {
                crate::terminal::note!(
                    "validate: {} on {}: {:.4} ± {:.4} vs {:.4} ({}) in {:.1} s",
                    row.sampler,
                    row.case,
                    row.estimate,
                    row.sem,
                    row.truth,
                    check::percent(row.rel_error),
                    row.walltime_sec
                );
            }
            rows.push(row);
        }
    }
    let passed = rows.iter().all(|r| r.verdict.passed);
    Ok(Report {
        precision: F::NAME,
        quick,
        cases: infos,
        samplers,
        rows,
        passed,
    })
}
