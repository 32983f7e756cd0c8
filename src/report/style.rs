//! The shared look of every plot, and the one place that touches the PNG backend.
//!
//! Data enters as a drawing closure; it leaves as a PNG file written atomically (temporary name,
//! then rename). Text uses Liberation Sans (SIL OFL 1.1, see `fonts/`), compiled into the
//! binary and registered with plotters' ab_glyph backend on first use, so rendering is the same
//! on a laptop and on a compute node without fonts.

use std::error::Error;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::PlotError;
use super::files::{destination, place, temp_for};

/// The family name the embedded font is registered under.
pub const FONT: &str = "lambda-hat-sans";

const FONT_BYTES: &[u8] = include_bytes!("fonts/LiberationSans-Regular.ttf");

/// Pixel sizes chosen so that a 1000 px wide PNG shown at half size stays legible.
pub const TITLE_PX: u32 = 28;
pub const SUBTITLE_PX: u32 = 20;
pub const AXIS_DESC_PX: u32 = 22;
pub const TICK_PX: u32 = 18;
pub const LEGEND_PX: u32 = 18;

/// Canvas of a single-panel plot.
pub const SIZE: (u32, u32) = (1000, 600);

/// Canvas of a plot with two panels side by side (trace, convergence, energy).
pub const WIDE: (u32, u32) = (1400, 600);

/// Matplotlib's "tab10" colours: what the users' old plots used, and distinguishable in print.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub fn font(px: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, px).into_font()).color(&BLACK)
}

/// What a drawing closure returns; plotters' errors are boxed into it with `?`.
pub type DrawResult = Result<(), Box<dyn Error>>;

fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Draws a `size` canvas with a title (and an optional second line) and writes it as PNG to
/// `path`; `draw` gets the area below the title.
pub fn render(
    path: &Path,
    size: (u32, u32),
    title: &str,
    subtitle: &str,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
) -> Result<(), PlotError> {
    ensure_font()?;
    let draw_error = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // A device or pipe gets the PNG through a temporary file (the encoder writes only to files,
    // and a device's folder, such as /dev, is no place for one); a symlink's target gets it by
    // rename, as a file would.
    let dest = destination(path);
    let tmp = temp_for(&dest, "plot.png");
    // The folder is made as `--out` makes it, and the temporary file is opened here first, so a
    // path that cannot be written fails with the system's reason, not the PNG encoder's
    // nested debug text.
    if let Some(parent) = tmp.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| draw_error(&e))?;
    }
    std::fs::File::create(&tmp).map_err(|e| draw_error(&e))?;
    let result = (|| -> DrawResult {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        let mut body = root.titled(title, font(TITLE_PX))?;
        if !subtitle.is_empty() {
            body = body.titled(subtitle, font(SUBTITLE_PX).color(&RGBColor(70, 70, 70)))?;
        }
        draw(&body)?;
        root.present()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(draw_error(&e));
    }
    place(&tmp, &dest).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        draw_error(&e)
    })
}

/// Tick labels people read at a glance: `25k`, `1.5M`, `0.25`, `3e-5`.
pub fn fmt_tick(x: &f64) -> String {
    let x = *x;
    let a = x.abs();
    if a == 0.0 {
        return "0".into();
    }
    let trimmed = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    for (scale, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if a >= 10.0 * scale || (a >= scale && suffix != "k") {
            return format!("{}{suffix}", trimmed(format!("{:.2}", x / scale)));
        }
    }
    if a < 1e-3 {
        return format!("{x:.0e}");
    }
    trimmed(format!("{x:.4}"))
}

/// The finite range of `values`, padded by 5 % on both sides (a constant gets ±1 or ±5 %), or
/// `None` when nothing is finite.
pub fn padded_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else if lo != 0.0 {
        0.05 * lo.abs()
    } else {
        1.0
    };
    Some((lo - pad, hi + pad))
}

/// The range of the positive finite `values` for a log axis, padded by a tenth of a decade.
pub fn log_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (lo <= hi).then(|| (lo / 10f64.powf(0.1), hi * 10f64.powf(0.1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        let cases = [
            (0.0, "0"),
            (0.25, "0.25"),
            (12.5, "12.5"),
            (100.0, "100"),
            (2500.0, "2500"),
            (25000.0, "25k"),
            (1.5e6, "1.5M"),
            (2e9, "2G"),
            (3e-5, "3e-5"),
            (-12.0, "-12"),
        ];
        for (x, want) in cases {
            assert_eq!(fmt_tick(&x), want, "{x}");
        }
    }

    #[test]
    fn ranges_skip_non_finite_values() {
        assert_eq!(padded_range([1.0, f64::NAN, 3.0]), Some((0.9, 3.1)));
        assert_eq!(padded_range([f64::NAN]), None);
        assert_eq!(padded_range([0.0, 0.0]), Some((-1.0, 1.0)));
        assert!(log_range([0.0, -1.0]).is_none());
    }
}
