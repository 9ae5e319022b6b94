//! `%START_TIME(...)%` formats: the strftime specifiers Envoy users write, always in UTC.

/// A parsed time format.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeFormat(Vec<Piece>);

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    /// `%Y`, `%m`, `%d`, `%H`, `%M`, `%S`, `%j`, `%s`, `%z`, `%Z`.
    Spec(char),
    /// `%3f`, `%6f`, `%9f`, `%f` (9), and `%E3S` (seconds with 3 decimals).
    Fraction(u8),
    SecondsWithFraction(u8),
}

impl TimeFormat {
    pub fn parse(text: &str) -> Result<TimeFormat, String> {
        let mut pieces = Vec::new();
        let mut chars = text.chars().peekable();
        let mut literal = String::new();
        let bad = |spec: &str| {
            format!(
                "`%{spec}` in `%START_TIME({text})%` is not a time specifier weft knows \
                 (%Y %m %d %H %M %S %j %s %z %Z %f %3f %6f %9f %E3S %%)"
            )
        };
        while let Some(c) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let spec = chars.next().ok_or_else(|| bad(""))?;
            let piece = match spec {
                '%' => {
                    literal.push('%');
                    continue;
                }
                'Y' | 'm' | 'd' | 'H' | 'M' | 'S' | 'j' | 's' | 'z' | 'Z' => Piece::Spec(spec),
                'f' => Piece::Fraction(9),
                '3' | '6' | '9' if chars.peek() == Some(&'f') => {
                    chars.next();
                    Piece::Fraction(spec as u8 - b'0')
                }
                'E' => {
                    let digits: String = chars.by_ref().take(2).collect();
                    match digits.as_str() {
                        "3S" => Piece::SecondsWithFraction(3),
                        "6S" => Piece::SecondsWithFraction(6),
                        "9S" => Piece::SecondsWithFraction(9),
                        _ => return Err(bad(&format!("E{digits}"))),
                    }
                }
                other => return Err(bad(&other.to_string())),
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(TimeFormat(pieces))
    }

    /// `unix_ns` (nanoseconds since the epoch) in this format, UTC.
    pub fn render(&self, unix_ns: u128, out: &mut String) {
        use std::fmt::Write;
        let secs = (unix_ns / 1_000_000_000) as i64;
        let nanos = (unix_ns % 1_000_000_000) as u32;
        let c = Civil::of(secs);
        for piece in &self.0 {
            let _ = match piece {
                Piece::Text(t) => write!(out, "{t}"),
                Piece::Spec('Y') => write!(out, "{:04}", c.year),
                Piece::Spec('m') => write!(out, "{:02}", c.month),
                Piece::Spec('d') => write!(out, "{:02}", c.day),
                Piece::Spec('H') => write!(out, "{:02}", c.hour),
                Piece::Spec('M') => write!(out, "{:02}", c.minute),
                Piece::Spec('S') => write!(out, "{:02}", c.second),
                Piece::Spec('j') => write!(out, "{:03}", c.day_of_year),
                Piece::Spec('s') => write!(out, "{secs}"),
                Piece::Spec('z') => write!(out, "+0000"),
                Piece::Spec(_) => write!(out, "UTC"),
                Piece::Fraction(n) => write!(out, "{}", fraction(nanos, *n)),
                Piece::SecondsWithFraction(n) => {
                    write!(out, "{:02}.{}", c.second, fraction(nanos, *n))
                }
            };
        }
    }

    /// Envoy's default: `2026-12-03T10:00:00.123Z`.
    pub fn envoy_default() -> TimeFormat {
        TimeFormat::parse("%Y-%m-%dT%H:%M:%E3SZ").expect("a valid format")
    }
}

fn fraction(nanos: u32, digits: u8) -> String {
    let s = format!("{nanos:09}");
    s[..digits as usize].to_string()
}

/// A UTC calendar date and time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    day_of_year: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    /// Howard Hinnant's `civil_from_days`.
    fn of(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let day_of_year = BEFORE[month as usize - 1] + day + u32::from(leap && month > 2);
        Civil {
            year,
            month,
            day,
            day_of_year,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: &str, ns: u128) -> String {
        let mut s = String::new();
        TimeFormat::parse(f).unwrap().render(ns, &mut s);
        s
    }

    #[test]
    fn renders_utc_dates_like_envoy() {
        // 2024-02-29T23:59:58.123456789Z, a leap day.
        let ns = 1_709_251_198_123_456_789;
        let mut s = String::new();
        TimeFormat::envoy_default().render(ns, &mut s);
        assert_eq!(s, "2024-02-29T23:59:58.123Z");
        assert_eq!(
            render("%s %j %z %Z %6f %%", ns),
            "1709251198 060 +0000 UTC 123456 %"
        );
        assert_eq!(render("%Y/%m/%d", 0), "1970/01/01");
        assert_eq!(
            render("%Y-%m-%d %j", 1_735_603_200 * 1_000_000_000),
            "2024-12-31 366"
        );
    }

    #[test]
    fn unknown_specifiers_are_named() {
        let e = TimeFormat::parse("%Y-%q").unwrap_err();
        assert!(e.contains("`%q`"), "{e}");
        assert!(TimeFormat::parse("%E4S").is_err());
    }
}
