//! The one duration type of lifeboat: Go's syntax (`500ms`, `30s`, `5m`, `1h30m`, `1.5h`),
//! as Kubernetes and Alertmanager write durations, for plan fields, CLI and controller
//! flags alike.
//!
//! Hand-written rather than `kube::core::Duration`: that parser accepts an empty string
//! as zero and panics on a negative part such as `1h-2m` (`Duration::mul_f64`), and
//! durations here come from users' plans and flags.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A non-negative duration written in Go's syntax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

/// Longest duration accepted (about 317 years): beyond it a plan is surely wrong.
const MAX_SECONDS: f64 = 1e10;

impl GoDuration {
    pub const ZERO: GoDuration = GoDuration(Duration::ZERO);

    pub fn from_secs(secs: u64) -> GoDuration {
        GoDuration(Duration::from_secs(secs))
    }

    pub fn as_std(self) -> Duration {
        self.0
    }
}

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Duration {
        d.0
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> GoDuration {
        GoDuration(d)
    }
}

impl FromStr for GoDuration {
    type Err = String;

    /// One or more `<number><unit>` with units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`; `0`
    /// alone is zero. Empty, negative, unit-less and absurdly large values are errors.
    fn from_str(s: &str) -> Result<GoDuration, String> {
        let text = s.trim();
        if text.is_empty() {
            return Err("empty duration".to_string());
        }
        if text == "0" {
            return Ok(GoDuration::ZERO);
        }
        if text.starts_with('-') {
            return Err(format!("invalid duration {s:?}: negative"));
        }
        let bad = || format!("invalid duration {s:?}: expected e.g. 500ms, 30s, 5m, 1h30m");
        let mut total = 0f64;
        let mut rest = text;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if num_len == 0 {
                return Err(bad());
            }
            let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = match &rest[..unit_len] {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "" => {
                    return Err(format!(
                        "invalid duration {s:?}: missing unit (ms, s, m, h)"
                    ));
                }
                u => return Err(format!("invalid duration {s:?}: unknown unit {u:?}")),
            };
            rest = &rest[unit_len..];
            total += n * unit;
        }
        if !total.is_finite() || total > MAX_SECONDS {
            return Err(format!("invalid duration {s:?}: too large"));
        }
        Ok(GoDuration(Duration::from_secs_f64(total)))
    }
}

impl fmt::Display for GoDuration {
    /// `30s`, `5m`, `1m30s`, `1h`, `250ms`: what `from_str` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms < 1000 {
            return write!(f, "{ms}ms");
        }
        let secs = self.0.as_secs();
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || (h == 0 && m == 0) {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Duration, String> {
        s.parse::<GoDuration>().map(Duration::from)
    }

    #[test]
    fn go_syntax_parses() {
        for (text, ms) in [
            ("0", 0),
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1m30s", 90_000),
            ("1.5h", 5_400_000),
            ("2h45m10s", 9_910_000),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_millis(ms)), "{text}");
        }
    }

    #[test]
    fn bad_durations_are_errors_never_defaults_or_panics() {
        for bad in [
            "", " ", "m", "s", "5", "abc", "5x", "1h-2m", "1h 30m", "-5s", "1e400h", "..s", "1..5s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn display_reads_back() {
        for (d, text) in [
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_millis(250), "250ms"),
        ] {
            assert_eq!(GoDuration(d).to_string(), text);
            assert_eq!(parse(text), Ok(d));
        }
    }
}
