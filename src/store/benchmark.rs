//! Per-job benchmarks, as Snakemake's `benchmark:` directive records them: one TSV per job at
//! `<store>/benchmarks/<rule>/<job key>.tsv` with Snakemake's columns, which
//! `pandas.read_csv(path, sep="\t")` reads.
//!
//! Who measures: every job's worker measures itself when it ends (its own rusage, and
//! `/proc/self/io` for the bytes it read and wrote) and writes the file where the executor told
//! it to ([`BENCHMARK_ENV`], which the local executor and the SLURM scripts set). Only when a
//! SLURM worker could not (killed at its time or memory limit) does the controller write what
//! `sacct` reported (wall time and MaxRSS; the rest is `NA`). The controllers copy the numbers into the
//! journal's `finished` and `failed` events (`elapsed_secs`, `max_rss_bytes`, …), where
//! `status -v` reads them.
//!
//! In: a [`Benchmark`]. Out: its TSV text, or the numbers parsed back from that text. Only
//! [`measure_self`] and [`write()`] touch the system.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable through which the executor tells a worker where to write its
/// benchmark.
pub const BENCHMARK_ENV: &str = "LAMBDA_HAT_BENCHMARK";

/// Snakemake's benchmark columns, in its order. Sizes are in MiB (Snakemake divides psutil's
/// bytes by 1024² and calls the result MB); `max_uss` and `max_pss` are `NA` (they need a
/// sampling monitor; max RSS is what `--resources mem_mb` is sized from).
pub const COLUMNS: [&str; 10] = [
    "s",
    "h:m:s",
    "max_rss",
    "max_vms",
    "max_uss",
    "max_pss",
    "io_in",
    "io_out",
    "mean_load",
    "cpu_time",
];

/// What one job used. `None` is a number the source could not give (written `NA`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Benchmark {
    pub wall: Duration,
    pub max_rss_bytes: Option<u64>,
    pub max_vms_bytes: Option<u64>,
    pub io_in_bytes: Option<u64>,
    pub io_out_bytes: Option<u64>,
    pub cpu_secs: Option<f64>,
}

/// `<store>/benchmarks/<rule>/<key>.tsv`.
pub fn path(store_root: &Path, rule: &str, key: &str) -> PathBuf {
    store_root
        .join("benchmarks")
        .join(rule)
        .join(format!("{key}.tsv"))
}

const MIB: f64 = 1024.0 * 1024.0;

impl Benchmark {
    /// Snakemake's two lines: the header and one row.
    pub fn tsv(&self) -> String {
        let secs = self.wall.as_secs_f64();
        let mib = |b: Option<u64>| b.map_or("NA".to_string(), |b| format!("{:.2}", b as f64 / MIB));
        // Snakemake's mean_load: CPU time over wall time, in percent.
        let load = match self.cpu_secs {
            Some(c) if secs > 0.0 => format!("{:.2}", 100.0 * c / secs),
            _ => "NA".to_string(),
        };
        let row = [
            format!("{secs:.4}"),
            hms(self.wall),
            mib(self.max_rss_bytes),
            mib(self.max_vms_bytes),
            "NA".to_string(),
            "NA".to_string(),
            mib(self.io_in_bytes),
            mib(self.io_out_bytes),
            load,
            self.cpu_secs
                .map_or("NA".to_string(), |c| format!("{c:.2}")),
        ];
        format!("{}\n{}\n", COLUMNS.join("\t"), row.join("\t"))
    }

    /// The numbers of a TSV that [`Benchmark::tsv`] wrote (sizes back in bytes, to the
    /// 0.01 MiB the file keeps). `None` when the text is not such a file.
    pub fn parse_tsv(text: &str) -> Option<Benchmark> {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next()?.split('\t').collect();
        if header != COLUMNS {
            return None;
        }
        let row: Vec<&str> = lines.next()?.split('\t').collect();
        if row.len() != COLUMNS.len() {
            return None;
        }
        let num = |i: usize| {
            row[i]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let bytes = |i: usize| num(i).map(|mib| (mib * MIB).round() as u64);
        Some(Benchmark {
            wall: Duration::from_secs_f64(num(0)?),
            max_rss_bytes: bytes(2),
            max_vms_bytes: bytes(3),
            io_in_bytes: bytes(6),
            io_out_bytes: bytes(7),
            cpu_secs: num(9),
        })
    }

    /// The journal fields of a `finished` or `failed` event (`elapsed_secs` as whole seconds,
    /// as sacct's; the rest only where known).
    pub fn journal_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        // An integer, as sacct's (exec/slurm/history.rs reads it with as_u64).
        m.insert(
            "elapsed_secs".into(),
            (self.wall.as_secs_f64().round() as u64).into(),
        );
        m.insert("wall_secs".into(), self.wall.as_secs_f64().into());
        for (k, v) in [
            ("max_rss_bytes", self.max_rss_bytes),
            ("io_in_bytes", self.io_in_bytes),
            ("io_out_bytes", self.io_out_bytes),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        }
        if let Some(c) = self.cpu_secs {
            m.insert("cpu_secs".into(), c.into());
        }
        m
    }
}

/// `h:m:s` as Snakemake writes it: hours, minutes and whole seconds.
fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// This process's use so far: its rusage (max RSS, user + system CPU time), its peak virtual
/// size (`VmPeak`) and the bytes it made the storage layer read and write (`/proc/self/io`).
pub fn measure_self(wall: Duration) -> Benchmark {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    let proc_field = |file: &str, key: &str, scale: u64| -> Option<u64> {
        let text = std::fs::read_to_string(file).ok()?;
        let line = text.lines().find(|l| l.starts_with(key))?;
        let value = line[key.len()..].split_whitespace().next()?;
        value.parse::<u64>().ok().map(|v| v * scale)
    };
    Benchmark {
        wall,
        // Linux reports ru_maxrss in KiB.
        max_rss_bytes: ok.then(|| usage.ru_maxrss as u64 * 1024),
        max_vms_bytes: proc_field("/proc/self/status", "VmPeak:", 1024),
        io_in_bytes: proc_field("/proc/self/io", "read_bytes:", 1),
        io_out_bytes: proc_field("/proc/self/io", "write_bytes:", 1),
        cpu_secs: ok.then(|| secs(usage.ru_utime) + secs(usage.ru_stime)),
    }
}

/// Writes `bench` to `path` (atomically, creating the folder).
pub fn write(path: &Path, bench: &Benchmark) -> std::io::Result<()> {
    super::write_atomic(path, bench.tsv().as_bytes())
}

/// The benchmark at `path`, if there is a readable one.
pub fn read(path: &Path) -> Option<Benchmark> {
    Benchmark::parse_tsv(&std::fs::read_to_string(path).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Benchmark {
        Benchmark {
            wall: Duration::from_millis(3_723_500),
            max_rss_bytes: Some(200 * 1024 * 1024),
            max_vms_bytes: Some(1024 * 1024 * 1024),
            io_in_bytes: Some(0),
            io_out_bytes: Some(5 * 1024 * 1024),
            cpu_secs: Some(7000.0),
        }
    }

    #[test]
    fn tsv_has_snakemakes_columns_and_units() {
        let text = sample().tsv();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
        );
        // 3,723.5 s = 1 h 2 min 3 s; 200 MiB; load = 100 · 7000 / 3723.5 = 187.995 %.
        assert_eq!(
            lines[1],
            "3723.5000\t1:02:03\t200.00\t1024.00\tNA\tNA\t0.00\t5.00\t188.00\t7000.00"
        );
    }

    #[test]
    fn parse_reads_back_what_tsv_wrote_and_refuses_other_text() {
        let b = sample();
        assert_eq!(Benchmark::parse_tsv(&b.tsv()), Some(b));
        let unknown = Benchmark {
            max_rss_bytes: None,
            cpu_secs: None,
            ..sample()
        };
        assert_eq!(Benchmark::parse_tsv(&unknown.tsv()), Some(unknown));
        assert_eq!(Benchmark::parse_tsv("s\tother\n1\t2\n"), None);
        assert_eq!(Benchmark::parse_tsv(""), None);
        let header_only = format!("{}\n", COLUMNS.join("\t"));
        assert_eq!(Benchmark::parse_tsv(&header_only), None);
    }

    #[test]
    fn journal_fields_give_whole_elapsed_seconds_and_only_known_numbers() {
        let f = Benchmark {
            io_in_bytes: None,
            ..sample()
        }
        .journal_fields();
        assert_eq!(f["elapsed_secs"], 3724);
        assert_eq!(f["max_rss_bytes"], 200 * 1024 * 1024);
        assert!(!f.contains_key("io_in_bytes"));
        assert_eq!(f["cpu_secs"], 7000.0);
    }

    #[test]
    fn this_process_measures_a_positive_rss_and_cpu_time() {
        let b = measure_self(Duration::from_secs(1));
        assert!(b.max_rss_bytes.unwrap() > 1024 * 1024, "{b:?}");
        assert!(b.cpu_secs.unwrap() > 0.0, "{b:?}");
        assert!(
            b.max_vms_bytes.unwrap() >= b.max_rss_bytes.unwrap(),
            "{b:?}"
        );
    }
}
