use super::*;

fn figures(requests: f64, error_rate: f64, p99_ms: Option<f64>) -> Figures {
    Figures {
        requests,
        error_rate,
        p99: p99_ms.map(|ms| ms / 1000.0),
    }
}

fn breach(v: Verdict) -> String {
    match v {
        Verdict::Breach(why) => why,
        other => panic!("expected a breach, got {other:?}"),
    }
}

#[test]
fn a_canary_like_its_baseline_passes() {
    let canary = figures(240.0, 0.004, Some(40.0));
    let baseline = figures(800.0, 0.002, Some(35.0));
    assert_eq!(judge(&canary, &baseline, &Slo::default()), Verdict::Pass);
}

#[test]
fn noise_on_a_small_p99_passes_thanks_to_the_floor() {
    // +75 %, but 1.5 ms in absolute terms.
    let canary = figures(500.0, 0.0, Some(3.5));
    let baseline = figures(500.0, 0.0, Some(2.0));
    assert_eq!(judge(&canary, &baseline, &Slo::default()), Verdict::Pass);
    // Without the floor it would breach.
    let no_floor = Slo {
        p99_floor: 0.0,
        ..Slo::default()
    };
    breach(judge(&canary, &baseline, &no_floor));
}

#[test]
fn an_error_rate_increase_beyond_the_allowance_breaches() {
    let canary = figures(200.0, 0.125, Some(3.0));
    let baseline = figures(600.0, 0.0, Some(3.0));
    assert_eq!(
        breach(judge(&canary, &baseline, &Slo::default())),
        "error rate 12.5 % on the new revision against 0.0 % on the old (+12.5 points, allowed +0.5)"
    );
    // Exactly the allowance is within it.
    let canary = figures(200.0, 0.01, Some(3.0));
    let baseline = figures(600.0, 0.005, Some(3.0));
    assert_eq!(judge(&canary, &baseline, &Slo::default()), Verdict::Pass);
}

#[test]
fn a_p99_increase_beyond_the_allowance_and_the_floor_breaches() {
    let canary = figures(300.0, 0.0, Some(180.0));
    let baseline = figures(300.0, 0.0, Some(40.0));
    assert_eq!(
        breach(judge(&canary, &baseline, &Slo::default())),
        "p99 latency 180.0 ms on the new revision against 40.0 ms on the old (+350 %, allowed +50 %)"
    );
    // +50 % exactly is allowed.
    let canary = figures(300.0, 0.0, Some(60.0));
    assert_eq!(judge(&canary, &baseline, &Slo::default()), Verdict::Pass);
}

#[test]
fn both_breaches_are_named() {
    let canary = figures(300.0, 0.5, Some(900.0));
    let baseline = figures(300.0, 0.0, Some(40.0));
    let why = breach(judge(&canary, &baseline, &Slo::default()));
    assert!(
        why.starts_with("error rate 50.0 %") && why.contains("; p99 latency 900.0 ms"),
        "{why}"
    );
}

#[test]
fn without_a_p99_on_either_side_only_errors_count() {
    let canary = figures(300.0, 0.0, Some(900.0));
    let baseline = figures(300.0, 0.0, None);
    assert_eq!(judge(&canary, &baseline, &Slo::default()), Verdict::Pass);
}

#[test]
fn low_traffic_is_not_judged() {
    let canary = figures(12.0, 1.0 / 12.0, Some(900.0));
    let baseline = figures(600.0, 0.0, Some(3.0));
    assert_eq!(
        judge(&canary, &baseline, &Slo::default()),
        Verdict::NotEnoughTraffic(
            "12 requests on the new revision, at least 20 needed to judge it".into()
        )
    );
}

#[test]
fn a_canary_failing_everything_breaches_even_at_low_traffic() {
    let baseline = figures(600.0, 0.001, Some(3.0));
    let why = breach(judge(&figures(6.0, 1.0, None), &baseline, &Slo::default()));
    assert!(
        why.starts_with("error rate 100.0 % on the new revision against 0.1 %"),
        "{why}"
    );
    // But not with fewer than a handful of requests.
    assert!(matches!(
        judge(&figures(4.0, 1.0, None), &baseline, &Slo::default()),
        Verdict::NotEnoughTraffic(_)
    ));
    // Nor with an empty baseline: still a failure.
    breach(judge(
        &figures(6.0, 1.0, None),
        &Figures::default(),
        &Slo::default(),
    ));
}

#[test]
fn an_empty_baseline_is_not_judged() {
    let canary = figures(300.0, 0.0, Some(3.0));
    assert_eq!(
        judge(&canary, &Figures::default(), &Slo::default()),
        Verdict::NotEnoughTraffic("no requests on the old revision to compare with".into())
    );
}

#[test]
fn describes_figures_on_one_line() {
    assert_eq!(
        describe(&figures(240.0, 0.004, Some(3.2))),
        "240 requests, 0.4 % errors, p99 3.2 ms"
    );
    assert_eq!(
        describe(&Figures::default()),
        "0 requests, 0.0 % errors, no latency seen"
    );
    assert_eq!(
        describe(&figures(3.0, 0.0, Some(0.45))),
        "3 requests, 0.0 % errors, p99 0.45 ms"
    );
}

#[test]
fn parses_percentage_flags() {
    for s in ["0.5", "0.5%", " 0.5 % ", "0.5pp"] {
        assert!(
            (parse_percent_points(s).unwrap() - 0.005).abs() < 1e-12,
            "{s}"
        );
    }
    for s in ["50%", "50"] {
        assert!((parse_percent(s).unwrap() - 0.5).abs() < 1e-12, "{s}");
    }
    for s in ["", "%", "-1", "half", "NaN", "inf%"] {
        assert!(parse_percent(s).is_err(), "{s}");
        assert!(parse_percent_points(s).is_err(), "{s}");
    }
    assert_eq!(
        parse_percent("fast").unwrap_err().to_string(),
        "\"fast\" is not a percentage (a percentage, e.g. 50%)"
    );
}
