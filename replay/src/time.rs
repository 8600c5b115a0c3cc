//! Event times on the command line: RFC 3339 timestamps to unix nanoseconds, and
//! back ([`format_rfc3339`]) for output.
//!
//! Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, years 1970 to 9999,
//! up to 9 fraction digits (`t` and `z` in either case). Anything else is an error
//! that says what is expected; a time needs its zone, so it is never read in some
//! local time by accident.

/// Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// The civil date of a day count from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix nanoseconds as RFC 3339 in UTC with all nine fraction digits, e.g.
/// `2026-01-31T09:30:00.000000000Z` ([`parse_rfc3339`] reads it back).
pub fn format_rfc3339(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ns % 1_000_000_000
    )
}

/// Parses an RFC 3339 timestamp into unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let bad =
        |why: &str| format!("{s:?} is not an RFC 3339 time like 2026-01-31T09:30:00Z ({why})");
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = b.get(from..from + len).ok_or_else(|| bad("too short"))?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad("digits expected"));
        }
        Ok(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, want: &[u8]| -> Result<(), String> {
        match b.get(at) {
            Some(c) if want.contains(c) => Ok(()),
            _ => Err(bad("separator expected")),
        }
    };
    let year = num(0, 4)?;
    sep(4, b"-")?;
    let month = num(5, 2)?;
    sep(7, b"-")?;
    let day = num(8, 2)?;
    sep(10, b"Tt")?;
    let hour = num(11, 2)?;
    sep(13, b":")?;
    let minute = num(14, 2)?;
    sep(16, b":")?;
    let second = num(17, 2)?;
    if !(1970..=9999).contains(&year) {
        return Err(bad("years 1970 to 9999"));
    }
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return Err(bad("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("no such time of day"));
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err(bad("1 to 9 fraction digits"));
        }
        nanos = num(at, digits)? * 10i64.pow(9 - digits as u32);
        at += digits;
    }
    let offset_secs = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if at + 6 == b.len() => {
            let oh = num(at + 1, 2)?;
            sep(at + 3, b":")?;
            let om = num(at + 4, 2)?;
            if oh > 23 || om > 59 {
                return Err(bad("no such offset"));
            }
            let o = oh * 3600 + om * 60;
            if c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(bad("a zone, Z or ±HH:MM, must end it")),
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    u64::try_from(ns).map_err(|_| bad("before 1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::{format_rfc3339, parse_rfc3339};

    const NEW_YEAR_2026: u64 = 1_767_225_600_000_000_000;

    #[test]
    fn known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z"), Ok(NEW_YEAR_2026));
        assert_eq!(parse_rfc3339("2026-01-01t00:00:00z"), Ok(NEW_YEAR_2026));
        assert_eq!(
            parse_rfc3339("2026-01-01T12:00:00.5+02:00"),
            Ok(NEW_YEAR_2026 + 10 * 3_600_000_000_000 + 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2025-12-31T19:00:00.000000001-05:00"),
            Ok(NEW_YEAR_2026 + 1)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Ok(1_709_164_800_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T00:00:00Z"),
            Ok(1_709_251_200_000_000_000)
        );
    }

    #[test]
    fn formatting_reads_back() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(NEW_YEAR_2026 + 1),
            "2026-01-01T00:00:00.000000001Z"
        );
        assert_eq!(
            format_rfc3339(1_709_164_800_000_000_000 + 86_399_999_999_999),
            "2024-02-29T23:59:59.999999999Z"
        );
        // Every day across four centuries, at a moment that varies with the day.
        for day in (0..146_097u64 + 20_000).step_by(7) {
            let ns = day * 86_400_000_000_000 + (day * 7_919_000_000_013) % 86_400_000_000_000;
            assert_eq!(parse_rfc3339(&format_rfc3339(ns)), Ok(ns), "day {day}");
        }
    }

    #[test]
    fn malformed_times_say_what_is_expected() {
        for (s, why) in [
            ("2026-02-30T00:00:00Z", "no such date"),
            ("2025-02-29T00:00:00Z", "no such date"),
            ("2026-01-01 00:00:00Z", "separator expected"),
            ("2026-01-01T00:00:00", "a zone"),
            ("2026-01-01T24:00:00Z", "no such time of day"),
            ("2026-01-01T00:00:00.Z", "fraction digits"),
            ("2026-01-01T00:00:00.1234567890Z", "fraction digits"),
            ("1969-12-31T23:59:59Z", "years 1970 to 9999"),
            ("1970-01-01T00:00:00+01:00", "before 1970"),
            ("2026-1-01T00:00:00Z", "digits expected"),
            ("", "too short"),
            ("2026-01-01T00:00:00Zjunk", "a zone"),
        ] {
            let e = parse_rfc3339(s).expect_err(s);
            assert!(e.contains(why), "{s:?}: {e}");
            assert!(e.contains("RFC 3339"), "{e}");
        }
    }
}
