//! HTML escaping: every value that reaches the report page goes through [`escape`], because
//! experiments files, sampler names, warnings and paths may come from someone else.
//!
//! In: any string. Out: text that HTML reads back as exactly that string, in element content
//! and in quoted attribute values alike, and that can never open or close a tag or an attribute.

/// `&`, `<`, `>`, `"` and `'` as character references; everything else unchanged.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The inverse for the five references, written independently of `escape`.
    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("λ̂ = 4.5"), "λ̂ = 4.5");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn escaped_text_has_no_markup_and_reads_back(s in any::<String>()) {
            let e = escape(&s);
            prop_assert!(!e.contains(['<', '>', '"', '\'']));
            prop_assert_eq!(unescape(&e), s);
        }
    }
}
