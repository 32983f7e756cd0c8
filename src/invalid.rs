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

/// The largest count a setting may have (steps, draws, rows, chains, components): 10⁹. A larger
/// one is a slip (a billion gradient steps take days here), and the samplers add and multiply
/// counts (warmup + steps, draws × leapfrog steps), which must not overflow: past 10⁹ a typed
/// 2^64 − 1 wrapped SGLD's step count to a run without draws, and crashed HMC.
pub const MAX_COUNT: usize = 1_000_000_000;

/// A count: at least 1 and at most [`MAX_COUNT`].
pub fn count(out: &mut Vec<Invalid>, path: &str, x: usize) {
    if x == 0 {
        out.push(invalid(path, "must be at least 1, got 0"));
    } else {
        count_or_zero(out, path, x);
    }
}

/// A count that may be 0 (warmup steps): at most [`MAX_COUNT`].
pub fn count_or_zero(out: &mut Vec<Invalid>, path: &str, x: usize) {
    if x > MAX_COUNT {
        out.push(invalid(
            path,
            format!("must be at most {MAX_COUNT} (10^9), got {x}"),
        ));
    }
}

pub fn fraction(out: &mut Vec<Invalid>, path: &str, x: f64, open_low: bool) {
    let ok = x.is_finite() && x < 1.0 && if open_low { x > 0.0 } else { x >= 0.0 };
    if !ok {
        let range = if open_low { "in (0, 1)" } else { "in [0, 1)" };
        out.push(invalid(path, format!("must be {range}, got {x}")));
    }
}

/// Levenshtein distance: the fewest insertions, deletions and substitutions of characters that
/// turn `a` into `b`. For telling a slip (`runtme`, `dat`) from a name of its own.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}
