//! Clock times: reading `m:ss`, `h:mm:ss` and cue timing lines, writing `m:ss`.

/// Formats seconds as `m:ss` under an hour and `h:mm:ss` from an hour on.
/// Fractions are dropped; negative or non-finite values give `0:00`.
pub fn format_timestamp(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds.floor() as u64
    } else {
        0
    };
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h == 0 {
        format!("{m}:{s:02}")
    } else {
        format!("{h}:{m:02}:{s:02}")
    }
}

/// Parses `m:ss`, `mm:ss`, `h:mm:ss` (minutes of a two-part stamp may exceed
/// 59), with an optional fraction after `.` (or also `,` when `allow_comma`).
/// Seconds, and minutes of a three-part stamp, are two digits below 60.
pub(super) fn parse_clock(s: &str, allow_comma: bool) -> Option<f64> {
    let (main, frac) = match s.find(|c| c == '.' || (allow_comma && c == ',')) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let frac_secs = match frac {
        None => 0.0,
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            f.parse::<u64>().ok()? as f64 / 10f64.powi(f.len() as i32)
        }
    };
    let mut parts = main.split(':');
    let a = parts.next()?;
    let b = parts.next()?;
    let c = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let num = |p: &str, min: usize, max: usize| -> Option<u64> {
        if p.len() < min || p.len() > max || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let whole = match c {
        None => {
            let m = num(a, 1, 3)?;
            let s = num(b, 2, 2)?;
            if s >= 60 {
                return None;
            }
            m * 60 + s
        }
        Some(c) => {
            let h = num(a, 1, 5)?;
            let m = num(b, 2, 2)?;
            let s = num(c, 2, 2)?;
            if m >= 60 || s >= 60 {
                return None;
            }
            h * 3600 + m * 60 + s
        }
    };
    Some(whole as f64 + frac_secs)
}

/// A timestamp written as a word of its own, optionally in `[...]` or `(...)`.
pub(super) fn parse_stamp_token(tok: &str) -> Option<f64> {
    let inner = if (tok.starts_with('[') && tok.ends_with(']'))
        || (tok.starts_with('(') && tok.ends_with(')'))
    {
        tok.get(1..tok.len().saturating_sub(1))?
    } else {
        tok
    };
    if inner.is_empty() || !inner.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    parse_clock(inner, false)
}

/// A cue timing line: `start --> end [settings]`. Returns the times and
/// whether the start used a comma before the milliseconds (SRT style).
pub(super) fn parse_timing_line(line: &str) -> Option<(f64, f64, bool)> {
    let arrow = line.find("-->")?;
    let left = line[..arrow].trim();
    let right = line[arrow + 3..].split_whitespace().next()?;
    if !left.as_bytes().first()?.is_ascii_digit() || !right.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let start = parse_clock(left, true)?;
    let end = parse_clock(right, true)?;
    Some((start, end, left.contains(',')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format() {
        assert_eq!(format_timestamp(0.0), "0:00");
        assert_eq!(format_timestamp(24.9), "0:24");
        assert_eq!(format_timestamp(62.0), "1:02");
        assert_eq!(format_timestamp(3599.99), "59:59");
        assert_eq!(format_timestamp(3600.0), "1:00:00");
        assert_eq!(format_timestamp(3723.0), "1:02:03");
        assert_eq!(format_timestamp(36000.0 + 61.0), "10:01:01");
        assert_eq!(format_timestamp(-5.0), "0:00");
        assert_eq!(format_timestamp(f64::NAN), "0:00");
    }

    #[test]
    fn clock_parsing() {
        assert_eq!(parse_clock("0:24", false), Some(24.0));
        assert_eq!(parse_clock("75:30", false), Some(4530.0));
        assert_eq!(parse_clock("1:02:03", false), Some(3723.0));
        assert_eq!(parse_clock("00:00:01,500", true), Some(1.5));
        assert_eq!(parse_clock("00:00:01,500", false), None);
        assert_eq!(parse_clock("0:60", false), None);
        assert_eq!(parse_clock("1:2", false), None);
        assert_eq!(parse_clock("1:60:00", false), None);
        assert_eq!(parse_clock("16:9", false), None);
        assert_eq!(parse_stamp_token("[00:01:02]"), Some(62.0));
        assert_eq!(parse_stamp_token("(1:05)"), Some(65.0));
        assert_eq!(parse_stamp_token("0:24,"), None);
        assert_eq!(parse_stamp_token("[]"), None);
    }
}
