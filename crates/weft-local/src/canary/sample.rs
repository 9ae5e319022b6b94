//! What one scrape says, and the arithmetic on it: the window between two scrapes of a pod
//! ([`Sample::delta`]), the total over the pods of one side ([`sum`]), and the figures the
//! judge compares ([`Sample::figures`]).

/// Totals of one pod's scrape (or of a window, or of several pods), over every direction and
/// service. Counts are `f64` as in the exposition format.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// HTTP requests.
    pub requests: f64,
    /// Those that failed: a 5xx status, or no response at all (status empty or `0`).
    pub errors: f64,
    /// Latency histogram in seconds: `(le, cumulative count)`, ascending `le`, the last one
    /// `f64::INFINITY` when the proxy exposes it.
    pub buckets: Vec<(f64, f64)>,
}

/// The signals the judge compares, for one side over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub requests: f64,
    /// Failed requests over requests, 0..=1 (0 without requests).
    pub error_rate: f64,
    /// 99th percentile latency in seconds; `None` without observations.
    pub p99: Option<f64>,
}

impl Sample {
    /// What happened between `earlier` and this scrape of the same pod, like Prometheus
    /// `increase()`. A proxy that restarted in between starts its counters from zero, so when
    /// any counter went down — or the histogram's buckets changed, a new binary — the whole of
    /// this scrape is the window: every count comes from the same process.
    pub fn delta(&self, earlier: &Sample) -> Sample {
        let same_layout = earlier.buckets.is_empty()
            || (earlier.buckets.len() == self.buckets.len()
                && earlier
                    .buckets
                    .iter()
                    .zip(&self.buckets)
                    .all(|((a, _), (b, _))| a == b));
        let went_down = self.requests < earlier.requests
            || self.errors < earlier.errors
            || (same_layout
                && earlier
                    .buckets
                    .iter()
                    .zip(&self.buckets)
                    .any(|((_, a), (_, b))| b < a));
        if went_down || !same_layout {
            return self.clone();
        }
        let buckets = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &(le, n))| (le, n - earlier.buckets.get(i).map_or(0.0, |b| b.1)))
            .collect();
        Sample {
            requests: self.requests - earlier.requests,
            errors: self.errors - earlier.errors,
            buckets,
        }
    }

    /// Requests, error rate and p99 of this sample.
    pub fn figures(&self) -> Figures {
        let error_rate = if self.requests > 0.0 {
            (self.errors / self.requests).min(1.0)
        } else {
            0.0
        };
        Figures {
            requests: self.requests,
            error_rate,
            p99: self.quantile(0.99),
        }
    }

    /// The `q` quantile (0..=1) of the latency histogram, in seconds, as Prometheus
    /// `histogram_quantile` estimates it: linear interpolation inside the bucket holding the
    /// rank, from 0 for the first bucket. `None` without observations or without a finite
    /// bucket; a rank in the `+Inf` bucket gives the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let buckets = monotonic(&self.buckets);
        let total = buckets.last()?.1;
        if total <= 0.0 || !q.is_finite() {
            return None;
        }
        let highest_finite = buckets.iter().rev().find(|(le, _)| le.is_finite())?.0;
        let rank = q.clamp(0.0, 1.0) * total;
        let i = buckets.iter().position(|&(_, n)| n >= rank)?;
        let (upper, count) = buckets[i];
        if upper.is_infinite() {
            return Some(highest_finite);
        }
        let (lower, below) = if i == 0 { (0.0, 0.0) } else { buckets[i - 1] };
        if i == 0 && upper <= 0.0 {
            return Some(upper);
        }
        let inside = count - below;
        if inside <= 0.0 {
            return Some(upper);
        }
        Some(lower + (upper - lower) * (rank - below) / inside)
    }
}

/// The buckets in ascending `le`, their cumulative counts forced to never go down (as
/// Prometheus does against float noise).
fn monotonic(buckets: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<(f64, f64)> = buckets.iter().filter(|b| !b.0.is_nan()).copied().collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut max = 0.0_f64;
    sorted
        .into_iter()
        .map(|(le, n)| {
            max = max.max(n);
            (le, max)
        })
        .collect()
}

/// The total of several samples (the pods of one side): counters added, histograms merged.
pub fn sum(samples: &[Sample]) -> Sample {
    let series: Vec<&[(f64, f64)]> = samples.iter().map(|s| s.buckets.as_slice()).collect();
    Sample {
        requests: samples.iter().map(|s| s.requests).sum(),
        errors: samples.iter().map(|s| s.errors).sum(),
        buckets: merge(&series),
    }
}

/// Adds cumulative histograms. Buckets with the same `le` add up exactly; where one series
/// lacks a boundary another has, it counts what it has at its next lower boundary (a lower
/// bound, so a quantile errs towards higher latency, never towards a pass).
pub(crate) fn merge(series: &[&[(f64, f64)]]) -> Vec<(f64, f64)> {
    let mut bounds: Vec<f64> = series
        .iter()
        .flat_map(|s| s.iter().map(|&(le, _)| le))
        .filter(|le| !le.is_nan())
        .collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    bounds
        .into_iter()
        .map(|b| {
            let n = series
                .iter()
                .map(|s| {
                    let at = s.partition_point(|&(le, _)| le <= b);
                    if at == 0 { 0.0 } else { s[at - 1].1 }
                })
                .sum();
            (b, n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    fn sample(requests: f64, errors: f64, buckets: &[(f64, f64)]) -> Sample {
        Sample {
            requests,
            errors,
            buckets: buckets.to_vec(),
        }
    }

    #[test]
    fn delta_subtracts_counters_of_the_same_process() {
        let earlier = sample(100.0, 2.0, &[(0.01, 90.0), (0.1, 99.0), (INF, 100.0)]);
        let later = sample(160.0, 5.0, &[(0.01, 140.0), (0.1, 158.0), (INF, 160.0)]);
        assert_eq!(
            later.delta(&earlier),
            sample(60.0, 3.0, &[(0.01, 50.0), (0.1, 59.0), (INF, 60.0)])
        );
    }

    #[test]
    fn delta_after_a_restart_counts_from_zero() {
        let earlier = sample(1000.0, 4.0, &[(0.01, 990.0), (INF, 1000.0)]);
        let later = sample(30.0, 1.0, &[(0.01, 29.0), (INF, 30.0)]);
        assert_eq!(later.delta(&earlier), later);
        // Only a bucket went down: still the same restart, all counts from the new process.
        let later = sample(1200.0, 5.0, &[(0.01, 500.0), (INF, 1200.0)]);
        assert_eq!(later.delta(&earlier), later);
        // Other buckets: another binary.
        let later = sample(1200.0, 5.0, &[(0.005, 1100.0), (INF, 1200.0)]);
        assert_eq!(later.delta(&earlier), later);
    }

    #[test]
    fn delta_from_nothing_is_the_scrape() {
        let later = sample(10.0, 0.0, &[(0.01, 10.0), (INF, 10.0)]);
        assert_eq!(later.delta(&Sample::default()), later);
    }

    #[test]
    fn sum_adds_counters_and_merges_buckets() {
        let a = sample(10.0, 1.0, &[(0.01, 8.0), (0.1, 10.0), (INF, 10.0)]);
        let b = sample(5.0, 0.0, &[(0.01, 1.0), (0.1, 4.0), (INF, 5.0)]);
        assert_eq!(
            sum(&[a, b]),
            sample(15.0, 1.0, &[(0.01, 9.0), (0.1, 14.0), (INF, 15.0)])
        );
        assert_eq!(sum(&[]), Sample::default());
    }

    #[test]
    fn merging_different_layouts_counts_what_each_knows() {
        let a: &[(f64, f64)] = &[(0.01, 8.0), (INF, 10.0)];
        let b: &[(f64, f64)] = &[(0.02, 4.0), (INF, 5.0)];
        assert_eq!(merge(&[a, b]), vec![(0.01, 8.0), (0.02, 12.0), (INF, 15.0)]);
    }

    #[test]
    fn p99_interpolates_inside_its_bucket() {
        // 100 observations: 50 ≤ 1 ms, 40 in (1, 2] ms, 10 in (2, 4] ms. Rank 99 is the 9th
        // of the 10 in the last finite bucket: 2 + 2 × 9/10 = 3.8 ms.
        let s = sample(
            100.0,
            0.0,
            &[(0.001, 50.0), (0.002, 90.0), (0.004, 100.0), (INF, 100.0)],
        );
        let p99 = s.figures().p99.unwrap();
        assert!((p99 - 0.0038).abs() < 1e-12, "{p99}");
        // The median, in the first bucket: from 0 to 1 ms, 50/50 of the way.
        assert!((s.quantile(0.5).unwrap() - 0.001).abs() < 1e-12);
        assert!((s.quantile(0.25).unwrap() - 0.0005).abs() < 1e-12);
    }

    #[test]
    fn p99_in_the_infinite_bucket_is_the_highest_finite_bound() {
        let s = sample(10.0, 0.0, &[(0.001, 5.0), (3.2768, 5.0), (INF, 10.0)]);
        assert_eq!(s.figures().p99, Some(3.2768));
    }

    #[test]
    fn no_observations_no_p99() {
        assert_eq!(Sample::default().figures().p99, None);
        let empty = sample(0.0, 0.0, &[(0.001, 0.0), (INF, 0.0)]);
        assert_eq!(empty.figures(), Figures::default());
        let only_inf = sample(3.0, 0.0, &[(INF, 3.0)]);
        assert_eq!(only_inf.figures().p99, None);
    }

    #[test]
    fn error_rate_is_errors_over_requests() {
        let f = sample(250.0, 1.0, &[]).figures();
        assert_eq!(f.requests, 250.0);
        assert!((f.error_rate - 0.004).abs() < 1e-12);
    }
}
