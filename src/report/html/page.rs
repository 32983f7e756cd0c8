//! The report page itself: a [`Page`] (plain data the command gathered) in, one self-contained
//! HTML document out. Pure: nothing is read here.
//!
//! Every value is escaped ([`escape`]) where it is written; the only unescaped text is this
//! file's own markup, CSS and script. Images are `data:` URLs, or in the zip report relative
//! links to the files beside the page ([`ImageSource`]); the script is inline, and nothing refers
//! to the network, so the report can be mailed, archived or opened offline.
//!
//! The script does two things: sorts a table when a header is clicked (numbers by value, from
//! each cell's `data-sort`, then text alphabetically, missing values last), and, once
//! the page has loaded, counts the images that decoded and those that failed (loaded, but not
//! a picture) and sets `data-images-decoded` and `data-images-failed` on `<body>` (what the
//! headless-browser test reads). A linked image that has not scrolled into view yet is neither.

use std::fmt::Write as _;

use super::base64;
use super::escape::escape;
use crate::report::table::{Table, Value};
use crate::store::benchmark::Benchmark;

/// Everything the page shows.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The store read.
    pub store: String,
    /// The experiments file whose sweep the report covers; `None`: every run in the store.
    pub sweep: Option<String>,
    /// When and by which version it was made.
    pub generated: String,
    /// The experiments file: its path and text, or `None` when it could not be read.
    pub config: Option<(String, String)>,
    /// The results table, one row per finished run, in the order of `runs`.
    pub table: Table,
    /// Per finished run (the table's rows, in order): its section.
    pub runs: Vec<RunSection>,
    pub targets: Vec<TargetSection>,
    pub benchmarks: Vec<BenchmarkRow>,
    /// Runs and targets without a result, one line each.
    pub unfinished: Vec<String>,
    /// Notes about what the report left out.
    pub notes: Vec<String>,
}

/// One finished sampler run.
#[derive(Debug, Clone, Default)]
pub struct RunSection {
    /// `tgt_…/run_…`: the section's heading and the source of its anchor.
    pub name: String,
    pub healthy: bool,
    /// The headline numbers, e.g. ("LLC", "4.12 ± 0.03").
    pub figures: Vec<(String, String)>,
    /// analysis.json's warnings (and the target's, when it is not converged).
    pub warnings: Vec<String>,
    pub images: Vec<Image>,
}

/// One target with the runs on it.
#[derive(Debug, Clone, Default)]
pub struct TargetSection {
    pub id: String,
    pub warnings: Vec<String>,
    pub images: Vec<Image>,
}

/// A plot on the page.
#[derive(Debug, Clone)]
pub struct Image {
    /// The file name, used as caption and alt text.
    pub name: String,
    pub source: ImageSource,
    /// Wider than [`WIDE_PX`] (the two-panel plots): it gets a row of the grid to itself.
    pub wide: bool,
}

/// Where the page gets a plot from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// The PNG's bytes, inlined as a base64 `data:` URL: the single-file report.
    Inline(Vec<u8>),
    /// A file beside the page, as a relative URL of characters that need no encoding
    /// (`[A-Za-z0-9._-]` and `/`): the zip report, whose page loads its plots as they scroll
    /// into view.
    File(String),
}

impl Image {
    /// A plot inlined into the page.
    pub fn inline(name: String, png: Vec<u8>) -> Image {
        let wide = png_width(&png).is_some_and(|w| w > WIDE_PX);
        Image {
            name,
            source: ImageSource::Inline(png),
            wide,
        }
    }

    /// A plot the page links; `header` is the PNG's first bytes (its width is in them).
    pub fn file(name: String, href: String, header: &[u8]) -> Image {
        Image {
            name,
            source: ImageSource::File(href),
            wide: png_width(header).is_some_and(|w| w > WIDE_PX),
        }
    }
}

/// One job's benchmark file.
#[derive(Debug, Clone)]
pub struct BenchmarkRow {
    pub rule: String,
    pub job: String,
    pub bench: Benchmark,
}

/// An `id` attribute value from a name: letters, digits, `-` and `_` kept, the rest `-`.
pub fn anchor(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("run-{safe}")
}

const STYLE: &str = r#"
body { font-family: "Liberation Sans", Arial, sans-serif; margin: 2em auto; max-width: 1500px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { margin-top: 1.5em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.9em; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: right; white-space: nowrap; }
td.text, th { text-align: left; }
table.sortable th { cursor: pointer; background: #f0f0f0; user-select: none; }
table.sortable th[data-order="asc"]::after { content: " ▲"; }
table.sortable th[data-order="desc"]::after { content: " ▼"; }
tr.unhealthy td { background: #fdecea; }
.marker { color: #b00020; font-weight: bold; }
.ok { color: #2e7d32; }
ul.warnings li { color: #b00020; }
.figures span { margin-right: 1.5em; }
.images { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); grid-auto-flow: dense; gap: 12px; }
figure { margin: 0; } figure img { width: 100%; border: 1px solid #eee; }
figure.wide { grid-column: 1 / -1; } figure.wide img { max-width: 1400px; }
nav a { margin-right: 1em; }
figcaption { font-size: 0.8em; color: #666; }
"#;

const SCRIPT: &str = r#"
function sortTable(th) {
  const table = th.closest("table");
  const col = Array.from(th.parentNode.children).indexOf(th);
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const asc = th.dataset.order !== "asc";
  table.querySelectorAll("th").forEach(h => delete h.dataset.order);
  th.dataset.order = asc ? "asc" : "desc";
  // Numbers (data-sort) by value, then text, then missing values, in either direction.
  const kind = c => c.dataset.sort === undefined ? 1 : (c.dataset.sort === "" ? 2 : 0);
  rows.sort((a, b) => {
    const x = a.cells[col], y = b.cells[col];
    if (kind(x) !== kind(y)) return kind(x) - kind(y);
    if (kind(x) === 2) return 0;
    const d = kind(x) === 0
      ? parseFloat(x.dataset.sort) - parseFloat(y.dataset.sort)
      : x.textContent.localeCompare(y.textContent, undefined, {numeric: true});
    return asc ? d : -d;
  });
  rows.forEach(r => body.appendChild(r));
}
document.querySelectorAll("table.sortable th").forEach(th =>
  th.addEventListener("click", () => sortTable(th)));
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const done = images.filter(i => i.complete);
  document.body.dataset.imagesDecoded = done.filter(i => i.naturalWidth > 0).length;
  document.body.dataset.imagesFailed = done.filter(i => i.naturalWidth === 0).length;
});
"#;

/// The whole document.
pub fn render(page: &Page) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>lambda-hat report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>lambda-hat report</h1>\n<p>{}<br>{}</p>\n<nav><a href=\"#results\">Results</a>\
         <a href=\"#config\">Experiments file</a><a href=\"#runs\">Sampler runs</a>\
         <a href=\"#targets\">Targets</a><a href=\"#benchmarks\">Benchmarks</a></nav>\n",
        scope(page),
        escape(&page.generated)
    );
    summary(&mut h, page);
    results_table(&mut h, page);
    unfinished(&mut h, page);
    config(&mut h, page);
    runs(&mut h, page);
    targets(&mut h, page);
    benchmarks(&mut h, page);
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}

/// "Store `runs`: the runs of the sweep `config/experiments.yaml`." (or every run in it).
fn scope(page: &Page) -> String {
    let store = format!("<code>{}</code>", escape(&page.store));
    match &page.sweep {
        Some(file) => format!(
            "Store {store}: the runs of the sweep <code>{}</code>.",
            escape(file)
        ),
        None => format!("Store {store}: every run in it."),
    }
}

/// The width in pixels a PNG's header declares (bytes 16..20 of its IHDR chunk).
fn png_width(png: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = png.get(16..20)?.try_into().ok()?;
    (png.starts_with(b"\x89PNG")).then(|| u32::from_be_bytes(bytes))
}

/// Plots wider than this (the two-panel ones) get a whole row of the image grid.
const WIDE_PX: u32 = 1000;

fn summary(h: &mut String, page: &Page) {
    let sick = page.runs.iter().filter(|r| !r.healthy).count();
    let verdict = if sick == 0 {
        format!(
            "<span class=\"ok\">all {} finished run(s) are healthy</span>",
            page.runs.len()
        )
    } else {
        format!(
            "<span class=\"marker\">⚠ {sick} of {} finished run(s) are unhealthy</span>",
            page.runs.len()
        )
    };
    let _ = writeln!(
        h,
        "<p>{verdict}; {} not finished.</p>",
        page.unfinished.len()
    );
    for note in &page.notes {
        let _ = writeln!(h, "<p>{}</p>", escape(note));
    }
}

fn results_table(h: &mut String, page: &Page) {
    h.push_str("<h2 id=\"results\">Results</h2>\n");
    if page.table.rows.is_empty() {
        h.push_str("<p>No finished sampler runs.</p>\n");
        return;
    }
    h.push_str("<p>One row per finished run; click a column header to sort. Unhealthy runs are \
                marked ⚠ and shaded.</p>\n<div class=\"scroll\"><table class=\"sortable\" id=\"results-table\">\n<thead><tr>");
    // The table's last column, the run's name, comes first here: it links to the run's plots
    // and carries the unhealthy marker, where people look first (the table scrolls sideways).
    let run_col = page.table.header.len().saturating_sub(1);
    let order: Vec<usize> = std::iter::once(run_col).chain(0..run_col).collect();
    for &i in &order {
        let _ = write!(h, "<th>{}</th>", escape(&page.table.header[i]));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (row, run) in page.table.rows.iter().zip(&page.runs) {
        let class = if run.healthy { "run" } else { "run unhealthy" };
        let _ = write!(h, "<tr class=\"{class}\">");
        for &i in &order {
            let Some(cell) = row.get(i) else { continue };
            if i == run_col {
                let marker = if run.healthy {
                    String::new()
                } else {
                    let why = run
                        .warnings
                        .first()
                        .map(String::as_str)
                        .unwrap_or("unhealthy");
                    format!("<span class=\"marker\" title=\"{}\">⚠</span> ", escape(why))
                };
                let _ = write!(
                    h,
                    "<td class=\"text\">{marker}<a href=\"#{}\">{}</a></td>",
                    escape(&anchor(&run.name)),
                    escape(&cell.text())
                );
            } else {
                cell_html(h, cell);
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n");
}

/// A cell: numbers right-aligned with their exact value in `data-sort`, text left-aligned, and
/// a missing value (a setting the run's sampler does not have, or a NaN) as an empty cell, which
/// reads better than the terminal's `NaN` in a table of mixed samplers.
fn cell_html(h: &mut String, cell: &Value) {
    match cell {
        Value::Null => h.push_str("<td data-sort=\"\" title=\"not set\"></td>"),
        Value::Int(_) | Value::Float(_) => {
            let _ = write!(
                h,
                "<td data-sort=\"{}\">{}</td>",
                escape(&cell.csv()),
                escape(&cell.text())
            );
        }
        Value::Bool(_) | Value::Text(_) => {
            let _ = write!(h, "<td class=\"text\">{}</td>", escape(&cell.text()));
        }
    }
}

fn unfinished(h: &mut String, page: &Page) {
    if page.unfinished.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"unfinished\">Not finished</h2>\n<ul>\n");
    for line in &page.unfinished {
        let _ = writeln!(h, "<li>{}</li>", escape(line));
    }
    h.push_str("</ul>\n");
}

fn config(h: &mut String, page: &Page) {
    h.push_str("<h2 id=\"config\">Experiments file</h2>\n");
    match &page.config {
        Some((path, text)) => {
            let _ = writeln!(
                h,
                "<p><code>{}</code></p>\n<pre>{}</pre>",
                escape(path),
                escape(text)
            );
        }
        None => h.push_str("<p>The experiments file could not be read.</p>\n"),
    }
}

fn warnings(h: &mut String, list: &[String]) {
    if list.is_empty() {
        return;
    }
    h.push_str("<ul class=\"warnings\">\n");
    for w in list {
        let _ = writeln!(h, "<li>⚠ {}</li>", escape(w));
    }
    h.push_str("</ul>\n");
}

fn images(h: &mut String, list: &[Image]) {
    if list.is_empty() {
        h.push_str("<p>No plots.</p>\n");
        return;
    }
    h.push_str("<div class=\"images\">\n");
    for img in list {
        let src = match &img.source {
            ImageSource::Inline(png) => {
                format!("src=\"data:image/png;base64,{}\"", base64::encode(png))
            }
            ImageSource::File(href) => format!("loading=\"lazy\" src=\"{}\"", escape(href)),
        };
        let _ = writeln!(
            h,
            "<figure{}><img alt=\"{name}\" {src}><figcaption>{name}</figcaption></figure>",
            if img.wide { " class=\"wide\"" } else { "" },
            name = escape(&img.name)
        );
    }
    h.push_str("</div>\n");
}

fn runs(h: &mut String, page: &Page) {
    if page.runs.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"runs\">Sampler runs</h2>\n");
    for run in &page.runs {
        let marker = if run.healthy {
            "<span class=\"ok\">healthy</span>"
        } else {
            "<span class=\"marker\">⚠ unhealthy</span>"
        };
        let _ = writeln!(
            h,
            "<section class=\"run-section\" id=\"{}\">\n<h3>{} — {marker}</h3>",
            escape(&anchor(&run.name)),
            escape(&run.name)
        );
        h.push_str("<p class=\"figures\">");
        for (k, v) in &run.figures {
            let _ = write!(h, "<span>{}: <b>{}</b></span>", escape(k), escape(v));
        }
        h.push_str("</p>\n");
        warnings(h, &run.warnings);
        images(h, &run.images);
        h.push_str("</section>\n");
    }
}

fn targets(h: &mut String, page: &Page) {
    if page.targets.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"targets\">Targets</h2>\n");
    for t in &page.targets {
        let _ = writeln!(h, "<h3>{}</h3>", escape(&t.id));
        warnings(h, &t.warnings);
        images(h, &t.images);
    }
}

fn benchmarks(h: &mut String, page: &Page) {
    h.push_str("<h2 id=\"benchmarks\">Benchmarks</h2>\n");
    if page.benchmarks.is_empty() {
        h.push_str("<p>No benchmark files (<code>benchmarks/&lt;rule&gt;/&lt;job&gt;.tsv</code>) for these jobs.</p>\n");
        return;
    }
    h.push_str(
        "<p>Per job, from <code>benchmarks/&lt;rule&gt;/&lt;job&gt;.tsv</code> (Snakemake's \
         columns).</p>\n<table class=\"sortable\" id=\"benchmark-table\">\n<thead><tr>\
         <th>rule</th><th>job</th><th>wall s</th><th>max RSS MiB</th><th>CPU s</th>\
         <th>mean load %</th></tr></thead>\n<tbody>\n",
    );
    const MIB: f64 = 1024.0 * 1024.0;
    for b in &page.benchmarks {
        let secs = b.bench.wall.as_secs_f64();
        let load = b
            .bench
            .cpu_secs
            .filter(|_| secs > 0.0)
            .map(|c| 100.0 * c / secs);
        let _ = write!(
            h,
            "<tr><td class=\"text\">{}</td><td class=\"text\">{}</td>",
            escape(&b.rule),
            escape(&b.job)
        );
        for v in [
            Some(secs),
            b.bench.max_rss_bytes.map(|r| r as f64 / MIB),
            b.bench.cpu_secs,
            load,
        ] {
            cell_html(h, &Value::float(v));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// A page with `s` in every place a value from outside reaches.
    fn page_with(s: &str) -> Page {
        let image = Image::inline(s.to_string(), s.as_bytes().to_vec());
        let linked = Image::file(s.to_string(), s.to_string(), s.as_bytes());
        Page {
            store: s.into(),
            sweep: Some(s.into()),
            generated: s.into(),
            config: Some((s.into(), s.into())),
            table: Table {
                header: vec![s.into(), "llc_mean".into(), "run".into()],
                rows: vec![vec![
                    Value::Text(s.into()),
                    Value::Float(1.5),
                    Value::Text(s.into()),
                ]],
            },
            runs: vec![RunSection {
                name: s.into(),
                healthy: false,
                figures: vec![(s.into(), s.into())],
                warnings: vec![s.into()],
                images: vec![image.clone(), linked],
            }],
            targets: vec![TargetSection {
                id: s.into(),
                warnings: vec![s.into()],
                images: vec![image],
            }],
            benchmarks: vec![BenchmarkRow {
                rule: s.into(),
                job: s.into(),
                bench: Benchmark {
                    wall: Duration::from_secs(2),
                    ..Benchmark::default()
                },
            }],
            unfinished: vec![s.into()],
            notes: vec![s.into()],
        }
    }

    /// The page's markup with every value's text removed: its tags in order.
    fn tags(html: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            let end = rest[start..]
                .find('>')
                .map_or(rest.len(), |e| start + e + 1);
            let tag = &rest[start..end];
            // The tag's name only: attribute values legitimately carry (escaped) values.
            let name: String = tag
                .chars()
                .skip(1)
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '!')
                .collect();
            out.push(name);
            rest = &rest[end..];
        }
        out
    }

    #[test]
    fn wide_plots_get_a_row_of_their_own() {
        let mut header = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        header.extend(1400u32.to_be_bytes());
        header.extend(600u32.to_be_bytes());
        assert_eq!(png_width(&header), Some(1400));
        assert_eq!(png_width(b"not a png at all, twenty bytes"), None);
        let mut page = page_with("x");
        assert!(!render(&page).contains("<figure class=\"wide\">"));
        page.runs[0].images[0] = Image::inline("trace.png".into(), header.clone());
        assert!(render(&page).contains("<figure class=\"wide\">"));
        page.runs[0].images[0] = Image::file("trace.png".into(), "plots/trace.png".into(), &header);
        let html = render(&page);
        assert!(html.contains("<figure class=\"wide\"><img alt=\"trace.png\" loading=\"lazy\" src=\"plots/trace.png\">"), "{html}");
    }

    #[test]
    fn unhealthy_runs_are_marked_and_linked() {
        let html = render(&page_with("tgt_a/run_hmc_1"));
        assert!(html.contains("<tr class=\"run unhealthy\">"), "{html}");
        assert!(html.contains("href=\"#run-tgt_a-run_hmc_1\""));
        assert!(html.contains("id=\"run-tgt_a-run_hmc_1\""));
        assert!(html.contains("⚠ 1 of 1 finished run(s) are unhealthy"));
        assert!(!html.contains("http"), "no network references");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// No value can inject a tag or an attribute: whatever the strings, the page has exactly
        /// the tags of a page made of a harmless one, and as many `<`, `>` and `"` characters.
        #[test]
        fn no_value_can_inject_a_tag(s in any::<String>(), t in "[<>\"'&/a-z =]{0,40}") {
            let baseline = render(&page_with("x"));
            let count = |html: &str, c: char| html.matches(c).count();
            for value in [s, t] {
                let html = render(&page_with(&value));
                prop_assert_eq!(tags(&html), tags(&baseline));
                for c in ['<', '>', '"'] {
                    prop_assert_eq!(count(&html, c), count(&baseline, c), "{:?}", c);
                }
            }
        }
    }
}
