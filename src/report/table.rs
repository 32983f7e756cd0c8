//! A small typed table and its three renderings: aligned text for terminals, CSV (RFC 4180)
//! for pandas and spreadsheets, and JSON records.
//!
//! Data enters as a header and rows of [`Value`]s; it leaves as a `String` (text, CSV) or a
//! `serde_json::Value` (an array of objects, one per row). A missing number (NaN in the run,
//! `null` in analysis.json) is an empty CSV field (pandas reads it as NaN), `NaN` in text and
//! `null` in JSON.

use std::cmp::Ordering;
use std::fmt::Write as _;

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(u64),
    Float(f64),
    /// `true`/`false` in every format (pandas' `read_csv` reads them as booleans).
    Bool(bool),
    Text(String),
}

impl Value {
    /// A float cell; NaN and infinities become `Null`, as in analysis.json.
    pub fn float(x: Option<f64>) -> Value {
        match x {
            Some(x) if x.is_finite() => Value::Float(x),
            _ => Value::Null,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// Full precision: Rust prints the shortest string that parses back to the same f64.
    pub fn csv(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Text(s) => csv_quote(s),
        }
    }

    /// Rounded like the seed's `.round(3)` so columns stay narrow, except numbers that would
    /// round to 0.000 (an SGLD step size of 1e-6): those keep 4 significant digits.
    pub fn text(&self) -> String {
        match self {
            Value::Null => "NaN".into(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) if *x != 0.0 && x.abs() < 5e-4 => format!("{x:.3e}"),
            Value::Float(x) => format!("{x:.3}"),
            Value::Bool(b) => b.to_string(),
            Value::Text(s) => s.clone(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => (*i).into(),
            Value::Float(x) => (*x).into(),
            Value::Bool(b) => (*b).into(),
            Value::Text(s) => s.clone().into(),
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Float(_) | Value::Null)
    }
}

/// Sort order for group keys: numbers by value, then booleans (false first), then text by
/// bytes, missing values last.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Text(_), _) => Ordering::Greater,
        (_, Value::Text(_)) => Ordering::Less,
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Bool(_), _) => Ordering::Greater,
        (_, Value::Bool(_)) => Ordering::Less,
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        _ => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
    }
}

/// A CSV field, quoted only when it has to be.
fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A header and rows of equal length.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| csv_quote(h)).collect();
        out.push_str(&header.join(","));
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(Value::csv).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// Columns padded to their widest cell; numbers right-aligned so digits line up.
    pub fn text(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Value::text).collect())
            .collect();
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                cells
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([self.header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // A column is numeric when every cell is (an all-missing column counts as numeric).
        let numeric: Vec<bool> = (0..self.header.len())
            .map(|c| self.rows.iter().all(|r| r[c].is_number()))
            .collect();
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(c, s)| {
                    if numeric[c] {
                        format!("{s:>w$}", w = widths[c])
                    } else {
                        format!("{s:<w$}", w = widths[c])
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", padded.join("  ").trim_end());
        };
        line(&self.header);
        for row in &cells {
            line(row);
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let records = self
            .rows
            .iter()
            .map(|row| {
                let object: serde_json::Map<String, serde_json::Value> = self
                    .header
                    .iter()
                    .cloned()
                    .zip(row.iter().map(Value::json))
                    .collect();
                serde_json::Value::Object(object)
            })
            .collect();
        serde_json::Value::Array(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            header: vec!["name".into(), "n".into(), "x".into()],
            rows: vec![
                vec![
                    Value::Text("a,\"b\"".into()),
                    Value::Int(3),
                    Value::Float(0.1),
                ],
                vec![Value::Text("c".into()), Value::Int(10), Value::Null],
            ],
        }
    }

    #[test]
    fn booleans_are_true_false_everywhere_and_sort_after_numbers() {
        let t = Table {
            header: vec!["ok".into()],
            rows: vec![vec![Value::Bool(true)], vec![Value::Bool(false)]],
        };
        assert_eq!(t.csv(), "ok\ntrue\nfalse\n");
        assert_eq!(t.text(), "ok\ntrue\nfalse\n");
        assert_eq!(t.json()[1]["ok"], false);
        let mut v = vec![
            Value::Null,
            Value::Text("a".into()),
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(1),
        ];
        v.sort_by(compare);
        assert_eq!(
            v,
            vec![
                Value::Int(1),
                Value::Bool(false),
                Value::Bool(true),
                Value::Text("a".into()),
                Value::Null
            ]
        );
    }

    #[test]
    fn csv_quotes_only_what_needs_quoting() {
        assert_eq!(sample().csv(), "name,n,x\n\"a,\"\"b\"\"\",3,0.1\nc,10,\n");
    }

    #[test]
    fn text_aligns_numbers_right() {
        let text = sample().text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "name    n      x");
        assert_eq!(lines[1], "a,\"b\"   3  0.100");
        assert_eq!(lines[2], "c      10    NaN");
    }

    #[test]
    fn json_uses_null_for_missing_numbers() {
        let json = sample().json();
        assert_eq!(json[1]["x"], serde_json::Value::Null);
        assert_eq!(json[0]["n"], 3);
    }

    #[test]
    fn missing_values_sort_last_and_numbers_by_value() {
        let mut v = vec![
            Value::Null,
            Value::Int(10),
            Value::Int(9),
            Value::Float(9.5),
        ];
        v.sort_by(compare);
        assert_eq!(
            v,
            vec![
                Value::Int(9),
                Value::Float(9.5),
                Value::Int(10),
                Value::Null
            ]
        );
    }
}
