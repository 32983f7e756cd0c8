//! What the samplers' settings types share: serde defaults and the "a number or `auto`" format.
//!
//! Each sampler's settings type lives in the sampler's own module (`hmc::HmcConfig`, …) and is
//! deserialized from its preset merged with the experiments file's overrides, then from
//! spec.json. The defaults here are part of every run ID (a run's ID hashes its resolved
//! settings), so changing one changes the IDs of runs that leave the key out.

use serde::Deserialize;

/// Chains per run when a preset leaves `chains` out.
pub(super) fn d_chains() -> usize {
    4
}

/// Stan's and BlackJAX's default acceptance target for HMC and NUTS.
pub(super) fn d_target_acceptance() -> f64 {
    0.8
}

/// An energy error above this marks a transition divergent (Stan's and BlackJAX's 1000).
pub(super) fn d_max_energy_error() -> f64 {
    1000.0
}

pub(super) fn default_true() -> bool {
    true
}

/// A number, or the string `auto` (→ `None`); anything else is an error naming both.
pub(super) fn number_or_auto<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    what: &str,
) -> Result<Option<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw<T> {
        Number(T),
        Text(String),
    }
    match Raw::<T>::deserialize(d) {
        Ok(Raw::Number(x)) => Ok(Some(x)),
        Ok(Raw::Text(t)) if t == "auto" => Ok(None),
        Ok(Raw::Text(t)) => Err(serde::de::Error::custom(format!(
            "expected {what} or `auto`, got \"{t}\""
        ))),
        Err(_) => Err(serde::de::Error::custom(format!(
            "expected {what} or `auto`"
        ))),
    }
}
