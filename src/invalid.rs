//! An invalid setting and the range checks that find one.
//!
//! In: a setting's dotted key path and its value. Out: an [`Invalid`] pushed onto the caller's
//! list when the value is out of range. Shared by the config schema (`config::schema`) and the
//! samplers' own settings (`samplers`), which sit below config, so it lives below both.

/// One problem with a config value: where it is (a dotted key path) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

pub fn invalid(path: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

pub fn positive(out: &mut Vec<Invalid>, path: &str, x: f64) {
    if !(x.is_finite() && x > 0.0) {
        out.push(invalid(path, format!("must be a positive number, got {x}")));
    }
}

pub fn at_least_one(out: &mut Vec<Invalid>, path: &str, x: usize) {
    if x == 0 {
        out.push(invalid(path, "must be at least 1, got 0"));
    }
}

pub fn fraction(out: &mut Vec<Invalid>, path: &str, x: f64, open_low: bool) {
    let ok = x.is_finite() && x < 1.0 && if open_low { x > 0.0 } else { x >= 0.0 };
    if !ok {
        let range = if open_low { "in (0, 1)" } else { "in [0, 1)" };
        out.push(invalid(path, format!("must be {range}, got {x}")));
    }
}
