//! The overrides `validate --quick` lays over each sampler's preset: less work, same tolerances.
//!
//! In: a sampler kind. Out: a YAML mapping deep-merged into that sampler's preset the way an
//! experiments file's `overrides:` are, so the preset's own choices (step size, integrator,
//! preconditioning, ...) are still what is checked; only the budget shrinks.
//!
//! Each sampler names its own quick budget, with the measurements behind it
//! (`Sampler::QUICK_OVERRIDES` in its module): fewer recorded draws than the preset, while
//! chains, warmup and tuning stay, because the adaptation and tuning are part of what is
//! checked. The budgets were measured before the presets moved to their present budgets, over
//! 20 chain seeds per case (f64); every mean over the seeds sat at least 3.9 seed-to-seed
//! standard deviations inside its tolerance. The presets now take more steps per draw (HMC 50
//! leapfrog steps at target 0.99, SGLD ten times the steps, MCLMC ten times the tuning), which
//! lowers the spread; `--quick` with seed 0 and 1 on regular / dln432 / dln333 is recorded in
//! README's validate section.

use serde_yaml::Value;

use crate::samplers::SamplerKind;

/// The quick overrides of `sampler`.
pub fn overrides(sampler: SamplerKind) -> Value {
    // Each sampler's constant is fixed, valid YAML (a unit test in `samplers` parses them).
    serde_yaml::from_str(sampler.quick_overrides()).unwrap_or(Value::Mapping(Default::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sampler_has_quick_overrides() {
        for kind in SamplerKind::ALL {
            let v = overrides(kind);
            let map = v.as_mapping().expect("a mapping");
            assert!(!map.is_empty(), "{kind:?}: {v:?}");
        }
    }
}
