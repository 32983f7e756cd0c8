//! The overrides `validate --quick` lays over each sampler's preset: less work, same tolerances.
//!
//! In: a sampler name. Out: a YAML mapping deep-merged into that sampler's preset the way an
//! experiments file's `overrides:` are, so the preset's own choices (step size, integrator,
//! preconditioning, ...) are still what is checked; only the budget shrinks.

use serde_yaml::Value;

/// The quick overrides of `sampler` (an empty mapping for an unknown name).
pub fn overrides(sampler: &str) -> Value {
    let yaml = match sampler {
        "hmc" => HMC,
        "sgld" => SGLD,
        "mclmc" => MCLMC,
        _ => "{}",
    };
    // The constants below are fixed, valid YAML (a unit test parses them).
    serde_yaml::from_str(yaml).unwrap_or(Value::Mapping(Default::default()))
}

// About half of each preset's recorded draws; chains, warmup and tuning stay, because the
// adaptation and tuning are part of what is checked (HMC's acceptance is judged on 4 chains).
// Measured over 10 chain seeds per case (release build, f64), relative errors with these
// overrides: HMC regular −1.2…+1.4 % (tolerance 3 %), deep linear −3.6…+3.6 % (10 %), acceptance
// 0.794–0.826; SGLD regular −1.5…+2.5 %, deep linear +0.3…+9.2 % (15 %); MCLMC regular
// −2.2…−1.7 %, deep linear −8.9…−0.6 % (15 %). Every worst case is ≥ 3 standard errors inside.
const HMC: &str = "{ draws: 1000 }";
const SGLD: &str = "{ steps: 10000 }";
const MCLMC: &str = "{ draws: 2000 }";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sampler_has_quick_overrides() {
        for name in crate::config::schema::SamplerConfig::NAMES {
            let v = overrides(name);
            let map = v.as_mapping().expect("a mapping");
            assert!(!map.is_empty(), "{name}: {v:?}");
        }
    }
}
