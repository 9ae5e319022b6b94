//! The verdict on one step of an upgrade: the canary's [`Figures`] against the baseline's
//! under an [`Slo`]; and the flag parsers for the SLO's overrides.

use super::Error;
use super::sample::Figures;

/// A canary that failed every one of at least this many requests breaches even below
/// [`Slo::min_requests`]: whatever the noise, it must roll back.
pub const ALL_FAILING: f64 = 5.0;

/// How much worse than the baseline the canary may be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo {
    /// Error rate increase allowed, in points as a fraction (0.005 = +0.5 points).
    pub max_error_rate_increase: f64,
    /// p99 latency increase allowed, as a fraction of the baseline's (0.5 = +50 %).
    pub max_p99_increase: f64,
    /// Seconds: a p99 increase smaller than this never breaches, so noise on a 2 ms p99 does
    /// not roll back a good canary.
    pub p99_floor: f64,
    /// Fewer canary requests than this cannot be judged.
    pub min_requests: f64,
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            max_error_rate_increase: 0.005,
            max_p99_increase: 0.5,
            p99_floor: 0.010,
            min_requests: 20.0,
        }
    }
}

/// Whether the step may go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Roll back: what the canary broke, against what the SLO allows.
    Breach(String),
    /// Not judged: too few requests to tell (wait longer or send traffic).
    NotEnoughTraffic(String),
}

/// The canary's figures against the baseline's over the same window.
///
/// - [`Verdict::Breach`] when the canary's error rate is more than
///   [`Slo::max_error_rate_increase`] above the baseline's, or when both have a p99 and the
///   canary's is more than [`Slo::max_p99_increase`] above the baseline's *and* more than
///   [`Slo::p99_floor`] above it in absolute terms (both breaches named when both happen).
/// - [`Verdict::NotEnoughTraffic`] when the canary saw fewer than [`Slo::min_requests`]
///   requests, or the baseline none — except that a canary that failed every one of at least
///   [`ALL_FAILING`] requests is a breach however little traffic there was.
/// - [`Verdict::Pass`] otherwise.
///
/// When every pod has moved the baseline of the window is empty: the caller passes the
/// baseline figures of the previous step instead (the last time the old revision served).
pub fn judge(canary: &Figures, baseline: &Figures, slo: &Slo) -> Verdict {
    let errors = error_breach(canary, baseline, slo);
    let all_failing = canary.requests >= ALL_FAILING && canary.error_rate >= 1.0;
    if let Some(breach) = &errors
        && all_failing
    {
        return Verdict::Breach(breach.clone());
    }
    if canary.requests < slo.min_requests {
        return Verdict::NotEnoughTraffic(format!(
            "{} requests on the new revision, at least {} needed to judge it",
            count(canary.requests),
            count(slo.min_requests)
        ));
    }
    if baseline.requests <= 0.0 {
        return Verdict::NotEnoughTraffic(
            "no requests on the old revision to compare with".to_string(),
        );
    }
    let breaches: Vec<String> = errors
        .into_iter()
        .chain(latency_breach(canary, baseline, slo))
        .collect();
    if breaches.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Breach(breaches.join("; "))
    }
}

fn error_breach(canary: &Figures, baseline: &Figures, slo: &Slo) -> Option<String> {
    let increase = canary.error_rate - baseline.error_rate;
    // The margin keeps an increase of exactly the allowance (as a float) within it.
    (increase > slo.max_error_rate_increase + 1e-12).then(|| {
        format!(
            "error rate {:.1} % on the new revision against {:.1} % on the old \
             ({:+.1} points, allowed +{})",
            canary.error_rate * 100.0,
            baseline.error_rate * 100.0,
            increase * 100.0,
            trimmed(slo.max_error_rate_increase * 100.0)
        )
    })
}

fn latency_breach(canary: &Figures, baseline: &Figures, slo: &Slo) -> Option<String> {
    let (new, old) = (canary.p99?, baseline.p99?);
    if new <= old * (1.0 + slo.max_p99_increase) || new - old <= slo.p99_floor {
        return None;
    }
    let increase = if old > 0.0 {
        format!("+{:.0} %", (new / old - 1.0) * 100.0)
    } else {
        "up from zero".to_string()
    };
    Some(format!(
        "p99 latency {} on the new revision against {} on the old ({increase}, allowed +{} %)",
        ms(new),
        ms(old),
        trimmed(slo.max_p99_increase * 100.0)
    ))
}

/// One line for the operator: `240 requests, 0.4 % errors, p99 3.2 ms`.
pub fn describe(f: &Figures) -> String {
    let p99 = f.p99.map_or_else(
        || "no latency seen".to_string(),
        |p| format!("p99 {}", ms(p)),
    );
    format!(
        "{} requests, {:.1} % errors, {p99}",
        count(f.requests),
        f.error_rate * 100.0
    )
}

/// A `--max-error-rate-increase` flag: percentage points, `0.5`, `0.5%` or `0.5pp`, as a
/// fraction (0.005).
pub fn parse_percent_points(s: &str) -> Result<f64, Error> {
    let t = s.trim();
    let number = t
        .strip_suffix("pp")
        .or_else(|| t.strip_suffix('%'))
        .unwrap_or(t);
    fraction(s, number, "percentage points, e.g. 0.5 or 0.5%")
}

/// A `--max-p99-increase` flag: a percentage, `50%` or `50`, as a fraction (0.5).
pub fn parse_percent(s: &str) -> Result<f64, Error> {
    let t = s.trim();
    fraction(
        s,
        t.strip_suffix('%').unwrap_or(t),
        "a percentage, e.g. 50%",
    )
}

fn fraction(given: &str, number: &str, expected: &str) -> Result<f64, Error> {
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n / 100.0),
        _ => Err(Error::Percent {
            given: given.to_string(),
            expected: expected.to_string(),
        }),
    }
}

/// Seconds as milliseconds: `3.2 ms`, or `0.45 ms` below one.
fn ms(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// A count as a whole number.
fn count(n: f64) -> String {
    format!("{:.0}", n)
}

/// A number with at most two decimals and no trailing zeros: `0.5`, `50`, `0.25`.
fn trimmed(n: f64) -> String {
    let s = format!("{n:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests;
