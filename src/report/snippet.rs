//! Putting a generated Markdown snippet into a file between fixed marker lines, replacing the
//! previous snippet in place, so that `promote` can be rerun on a hand-written README without
//! piling up galleries or touching the text around them.
//!
//! Data enters as the file's current text (or none) and the new snippet body; it leaves as the
//! new text. Pure string work: reading and writing the file is the caller's job.

use std::path::Path;

use super::ReportError;

pub const BEGIN: &str = "<!-- lambda-hat gallery: begin -->";
pub const END: &str = "<!-- lambda-hat gallery: end -->";

/// `body` wrapped in the markers.
pub fn wrap(body: &str) -> String {
    format!("{BEGIN}\n{}\n{END}\n", body.trim_end())
}

/// `existing` with the first marked snippet replaced by `body`, or with it appended (after a
/// blank line) when there is none. A begin marker without an end marker (or the reverse) is an
/// error rather than a guess, since guessing could delete the user's text.
pub fn splice(existing: &str, body: &str, path: &Path) -> Result<String, ReportError> {
    let broken = |marker, expected| ReportError::BrokenSnippet {
        path: path.to_path_buf(),
        marker,
        expected,
    };
    let snippet = wrap(body);
    let Some(begin) = existing.find(BEGIN) else {
        if existing.contains(END) {
            return Err(broken(END, BEGIN));
        }
        let separator = match existing {
            "" => "",
            s if s.ends_with("\n\n") => "",
            s if s.ends_with('\n') => "\n",
            _ => "\n\n",
        };
        return Ok(format!("{existing}{separator}{snippet}"));
    };
    let after_begin = begin + BEGIN.len();
    let end = existing[after_begin..]
        .find(END)
        .map(|i| after_begin + i + END.len())
        .ok_or_else(|| broken(BEGIN, END))?;
    // The old snippet's own line break goes with it; ours brings one.
    let rest = existing[end..]
        .strip_prefix('\n')
        .unwrap_or(&existing[end..]);
    Ok(format!("{}{snippet}{rest}", &existing[..begin]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("README.md")
    }

    #[test]
    fn appends_to_a_file_without_markers() {
        assert_eq!(splice("", "x", p()).unwrap(), wrap("x"));
        assert_eq!(
            splice("# Title\ntext", "x", p()).unwrap(),
            format!("# Title\ntext\n\n{}", wrap("x"))
        );
    }

    #[test]
    fn replaces_in_place_and_keeps_the_rest() {
        let before = format!("# Title\n\nintro\n\n{}\n## After\nmore\n", wrap("old"));
        let once = splice(&before, "new", p()).unwrap();
        assert_eq!(
            once,
            format!("# Title\n\nintro\n\n{}\n## After\nmore\n", wrap("new"))
        );
        let twice = splice(&once, "new", p()).unwrap();
        assert_eq!(twice, once);
        assert_eq!(twice.matches(BEGIN).count(), 1);
    }

    #[test]
    fn half_a_snippet_is_an_error() {
        let err = splice(&format!("a\n{BEGIN}\nb\n"), "x", p()).unwrap_err();
        assert!(err.to_string().contains("no matching"), "{err}");
        assert!(splice(&format!("a\n{END}\n"), "x", p()).is_err());
    }
}
