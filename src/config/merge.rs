//! Deep merge of YAML values: how `overrides` apply to presets.
//!
//! Mappings merge key by key (recursively); anything else (scalars, sequences, null) in the
//! override replaces the base value. So `overrides: { model: { depth: 6 } }` changes one key and
//! keeps the rest of the preset, while `widths: [8, 8]` replaces the whole list.

use serde_yaml::Value;

/// Merges `over` into `base` in place.
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn nested_keys_merge_and_scalars_replace() {
        let mut base = y("{model: {depth: 2, activation: relu}, steps: 10, widths: [1, 2]}");
        deep_merge(&mut base, &y("{model: {depth: 6}, widths: [8]}"));
        assert_eq!(
            base,
            y("{model: {depth: 6, activation: relu}, steps: 10, widths: [8]}")
        );
    }

    #[test]
    fn null_override_replaces() {
        let mut base = y("{batch_size: 32}");
        deep_merge(&mut base, &y("{batch_size: null}"));
        assert_eq!(base, y("{batch_size: null}"));
    }
}
