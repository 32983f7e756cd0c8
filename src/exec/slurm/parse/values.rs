//! Small value formats SLURM prints: durations (`1-02:03:04`) and memory sizes (`117204K`, bytes).

use super::error::ParseError;
use super::job_id::parse_u64_digits;

/// `CODE:SIGNAL` as in sacct's ExitCode and scontrol's `ExitCode=`: (exit status, signal number).
pub fn parse_exit_code(s: &str) -> Result<(u32, u32), ParseError> {
    let bad = || ParseError::BadExitCode(s.to_string());
    let (code, sig) = s.trim().split_once(':').ok_or_else(bad)?;
    let code = parse_u64_digits(code)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(bad)?;
    let sig = parse_u64_digits(sig)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(bad)?;
    Ok((code, sig))
}

/// SLURM duration `[D-]HH:MM:SS`, also `MM:SS` and a fractional seconds part (`00:00.123`,
/// printed for very short steps) → whole seconds (fraction dropped).
pub fn parse_duration_secs(s: &str) -> Result<u64, ParseError> {
    let bad = || ParseError::BadDuration(s.to_string());
    let s = s.trim();
    let (days, hms) = match s.split_once('-') {
        Some((d, rest)) => (parse_u64_digits(d).ok_or_else(bad)?, rest),
        None => (0, s),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [h, m, sec] => (*h, *m, *sec),
        [m, sec] => ("0", *m, *sec),
        _ => return Err(bad()),
    };
    let sec = sec.split_once('.').map_or(sec, |(whole, _)| whole);
    let h = parse_u64_digits(h).ok_or_else(bad)?;
    let m = parse_u64_digits(m).ok_or_else(bad)?;
    let sec = parse_u64_digits(sec).ok_or_else(bad)?;
    Ok(days * 86_400 + h * 3_600 + m * 60 + sec)
}

/// A memory size as sacct prints it → bytes. `""` (never sampled) → `None`.
/// With `--noconvert` MaxRSS is plain bytes (`120016896`); without it, or for ReqMem, it has a
/// binary unit suffix (`117204K`, `1.50G`, `50M`). A trailing `n`/`c` (per node / per CPU, printed
/// by SLURM < 21.08 in ReqMem) is ignored. Absurd values (22.05 transiently shows ReqMem
/// `18446744073709551616.00M` for a job it has not recorded yet) → `None`, not an error.
pub fn parse_mem_bytes(s: &str) -> Result<Option<u64>, ParseError> {
    let bad = || ParseError::BadMemory(s.to_string());
    let s = s.trim();
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let s = s.trim_end_matches(['n', 'c']);
    let (num, mult) = match s.char_indices().last() {
        Some((i, unit)) if unit.is_ascii_alphabetic() => {
            let exp = match unit.to_ascii_uppercase() {
                'K' => 1,
                'M' => 2,
                'G' => 3,
                'T' => 4,
                'P' => 5,
                _ => return Err(bad()),
            };
            (&s[..i], 1024f64.powi(exp))
        }
        _ => (s, 1.0),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    if mult == 1.0
        && let Some(v) = parse_u64_digits(num)
    {
        return Ok(Some(v)); // exact for plain byte counts
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bytes = (v * mult).round();
    // u64::MAX as f64 rounds up to 2^64, so `<` excludes SLURM's "infinite" sentinel.
    Ok((bytes < u64::MAX as f64).then_some(bytes as u64))
}
