//! `lambda-hat report` end to end: a real tiny sweep (SGLD, and HMC for the energy and
//! adaptation plots), the report written by the real binary, then opened in headless Chromium,
//! which must show one table row per run and decode every embedded image, and must render a
//! screenshot; then the zip report, unzipped, whose page must decode every plot file it links.
//!
//! Chromium is required, not optional: without it the test fails saying how to install it
//! (`scripts/test.sh` installs Debian's `chromium` when run as root, as CI does).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Test;

/// One target, two samplers, seconds on one core.
const SWEEP: &str = r#"
store_root: runs
targets:
  - { model: small, data: small, seed: 1, overrides: { data: { n_data: 200 }, training: { steps: 100 } } }
samplers:
  - { name: sgld, overrides: { chains: 2, warmup: 50, steps: 200, eval_every: 10, batch_size: 32 } }
  - { name: hmc, overrides: { chains: 2, warmup: 50, draws: 100, num_integration_steps: 5 } }
"#;

/// The Chromium binary on PATH.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "chromium is not installed, and this test needs it to open the HTML report: install \
         Debian's package (`apt-get install -y chromium`; scripts/test.sh does so when run as root)"
    );
}

/// Runs headless Chromium on `page` with `args` until `done` accepts its stdout; returns it.
/// A second attempt is allowed: a first start of Chromium on a fresh machine was seen to exit
/// at once without output (while it set up its caches), and then work on the next start.
fn headless(profile: &Path, page: &Path, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let url = format!("file://{}", page.display());
    let mut failures = Vec::new();
    for _ in 0..2 {
        let output = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                // Lets the load event and the page's script run before the DOM is dumped.
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(&url)
            .output()
            .expect("start chromium");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() && done(&stdout) {
            return stdout;
        }
        failures.push(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    panic!(
        "chromium {args:?} failed twice:\n{}",
        failures.join("\n---\n")
    );
}

/// The value of `data-<name>` on the dumped `<body>` tag.
fn body_attribute(dom: &str, name: &str) -> Option<usize> {
    let body = &dom[dom.find("<body")?..];
    let tag = &body[..body.find('>')?];
    let key = format!("data-{name}=\"");
    let start = tag.find(&key)? + key.len();
    tag[start..].split('"').next()?.parse().ok()
}

#[test]
fn the_report_opens_in_chromium_with_a_row_per_run_and_every_image_decoded() {
    let browser = chromium();
    let t = Test::new().experiments(SWEEP);
    t.run_with(&["-j", "2"]).success();
    t.run_with(&["report", "-o", "out/report.html"])
        .success()
        .stdout_has("out/report.html");
    let page = t.path().join("out/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Snakemake's spelling writes the same report.
    t.run_with(&["--report", "out/same.html"])
        .success()
        .stdout_has("out/same.html");
    let same = std::fs::read_to_string(t.path().join("out/same.html")).unwrap();
    assert_eq!(
        same.matches("<tr").count(),
        html.matches("<tr").count(),
        "the same sweep, the same rows"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network references"
    );
    // Benchmarks of the target's job and of both runs' jobs.
    assert_eq!(
        html.matches("<td class=\"text\">build_target</td>").count(),
        1
    );
    assert_eq!(
        html.matches("<td class=\"text\">run_sampler</td>").count(),
        2
    );
    let images = html.matches("<img ").count();
    // Per run trace, rank and convergence; HMC adds energy and adaptation; one training loss.
    assert_eq!(images, 2 * 3 + 2 + 1, "images in the report");

    let profile = t.path().join("chromium-profile");
    let dom = headless(&profile, &page, &["--dump-dom"], |out| {
        out.contains("</html>")
    });
    assert_eq!(
        dom.matches("<tr class=\"run").count(),
        2,
        "one results row per run in {browser:?}'s DOM"
    );
    assert_eq!(
        body_attribute(&dom, "images-decoded"),
        Some(images),
        "every image decoded; body: {:?}",
        &dom[dom.find("<body").unwrap_or(0)..][..200.min(dom.len())]
    );
    assert_eq!(body_attribute(&dom, "images-failed"), Some(0));

    let shot = t.path().join("screenshot.png");
    headless(
        &profile,
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2000",
        ],
        |_| shot.is_file(),
    );
    let img = image::open(&shot)
        .unwrap_or_else(|e| panic!("{} is not a readable PNG: {e}", shot.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), (1400, 2000));
    let inked = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(
        inked > 10_000,
        "the screenshot is blank ({inked} non-white pixels)"
    );
    // For people debugging the page: keep a copy when asked to.
    if let Some(dir) = std::env::var_os("LAMBDA_HAT_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, Path::new(&dir).join("report-screenshot.png")).unwrap();
    }

    // The zip report (Snakemake's `--report report.zip`): unzipped, its page shows the same
    // rows, and every plot, now a file beside it, decodes.
    t.run_with(&["--report", "out/sweep.zip"])
        .success()
        .stdout_has("unzip it and open sweep/report.html");
    let unzipped = t.path().join("unzipped");
    zip::ZipArchive::new(std::fs::File::open(t.path().join("out/sweep.zip")).unwrap())
        .unwrap()
        .extract(&unzipped)
        .unwrap();
    let zipped_page = unzipped.join("sweep/report.html");
    let zipped_html = std::fs::read_to_string(&zipped_page).unwrap();
    assert!(!zipped_html.contains("data:image"), "plots are files");
    assert_eq!(zipped_html.matches("<img ").count(), images);
    let dom = headless(&profile, &zipped_page, &["--dump-dom"], |out| {
        out.contains("</html>")
    });
    assert_eq!(dom.matches("<tr class=\"run").count(), 2);
    assert_eq!(
        body_attribute(&dom, "images-decoded"),
        Some(images),
        "every plot of the zip report decoded"
    );
    assert_eq!(body_attribute(&dom, "images-failed"), Some(0));
}
