//! Header parsing and generation, and the propagation decisions, without sockets.

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn traceparent(v: &str) -> Option<Incoming> {
    extract(&headers(&[(TRACEPARENT, v)]))
}

#[test]
fn a_valid_traceparent_gives_trace_parent_and_decision() {
    let i = traceparent(&format!("00-{TRACE}-{SPAN}-01")).unwrap();
    assert_eq!(i.trace_id.to_string(), TRACE);
    assert_eq!(i.span_id.to_string(), SPAN);
    assert_eq!((i.sampled, i.b3), (Some(true), None));
    let unsampled = traceparent(&format!("00-{TRACE}-{SPAN}-00")).unwrap();
    assert_eq!(unsampled.sampled, Some(false));
    // Only bit 0 is the sampled flag.
    assert_eq!(
        traceparent(&format!("00-{TRACE}-{SPAN}-03"))
            .unwrap()
            .sampled,
        Some(true)
    );
    // A later version may append fields.
    assert!(traceparent(&format!("01-{TRACE}-{SPAN}-01-what-comes")).is_some());
}

#[test]
fn an_invalid_traceparent_counts_as_absent() {
    let zeros_trace = "0".repeat(32);
    let zeros_span = "0".repeat(16);
    for bad in [
        format!("ff-{TRACE}-{SPAN}-01"),                  // forbidden version
        format!("00-{zeros_trace}-{SPAN}-01"),            // all-zero trace id
        format!("00-{TRACE}-{zeros_span}-01"),            // all-zero span id
        format!("00-{}-{SPAN}-01", TRACE.to_uppercase()), // upper-case hex
        format!("00-{TRACE}-{SPAN}-01-extra"),            // version 00 is exact
        format!("00-{}-{SPAN}-01", &TRACE[..16]),         // short trace id
        format!("00_{TRACE}-{SPAN}-01"),                  // separator
        format!("00-{TRACE}-{SPAN}-0x"),                  // flags
        "garbage".to_string(),
    ] {
        assert_eq!(traceparent(&bad), None, "{bad}");
    }
}

#[test]
fn b3_single_header_with_and_without_decision() {
    let parent = "05e3ac9a4f6e3b90";
    let get = |v: &str| extract(&headers(&[(B3, v)]));
    let full = get(&format!("{TRACE}-{SPAN}-1-{parent}")).unwrap();
    assert_eq!(
        full.span_id.to_string(),
        SPAN,
        "the caller's span, not its parent"
    );
    assert_eq!(
        (full.sampled, full.b3),
        (Some(true), Some(B3Encoding::Single))
    );
    assert_eq!(
        get(&format!("{TRACE}-{SPAN}-d")).unwrap().sampled,
        Some(true)
    );
    assert_eq!(
        get(&format!("{TRACE}-{SPAN}-0")).unwrap().sampled,
        Some(false)
    );
    assert_eq!(get(&format!("{TRACE}-{SPAN}")).unwrap().sampled, None);
    // A 64-bit trace id is padded on the left.
    let short = get(&format!("{}-{SPAN}-1", &TRACE[16..])).unwrap();
    assert_eq!(
        short.trace_id.to_string(),
        format!("{}{}", "0".repeat(16), &TRACE[16..])
    );
    for bad in [
        "1",
        "0",
        "d",
        &format!("{TRACE}-{SPAN}-x"),
        &format!("{TRACE}-{SPAN}-1-{parent}-9"),
    ] {
        assert_eq!(get(bad), None, "{bad}");
    }
}

#[test]
fn b3_multi_headers_with_sampled_and_debug_flags() {
    let base = [(B3_TRACE_ID, TRACE), (B3_SPAN_ID, SPAN)];
    let with = |extra: &[(&'static str, &str)]| {
        let all: Vec<_> = base.iter().chain(extra).cloned().collect();
        extract(&headers(&all))
    };
    let i = with(&[(B3_SAMPLED, "1")]).unwrap();
    assert_eq!((i.sampled, i.b3), (Some(true), Some(B3Encoding::Multi)));
    assert_eq!(with(&[(B3_SAMPLED, "0")]).unwrap().sampled, Some(false));
    assert_eq!(with(&[(B3_SAMPLED, "true")]).unwrap().sampled, Some(true));
    assert_eq!(
        with(&[(B3_FLAGS, "1"), (B3_SAMPLED, "0")]).unwrap().sampled,
        Some(true)
    );
    assert_eq!(with(&[]).unwrap().sampled, None, "deferred");
    assert_eq!(
        extract(&headers(&[(B3_TRACE_ID, TRACE)])),
        None,
        "no span id"
    );
    assert_eq!(
        extract(&headers(&[(B3_TRACE_ID, "xyz"), (B3_SPAN_ID, SPAN)])),
        None
    );
}

#[test]
fn traceparent_wins_over_b3() {
    let other = "a3ce929d0e0e47364bf92f3577b34da6";
    let h = headers(&[
        (TRACEPARENT, &format!("00-{TRACE}-{SPAN}-00")),
        (B3, &format!("{other}-{SPAN}-1")),
    ]);
    let i = extract(&h).unwrap();
    assert_eq!((i.trace_id.to_string().as_str(), i.b3), (TRACE, None));
    // An invalid traceparent falls through to B3.
    let h = headers(&[
        (TRACEPARENT, "nonsense"),
        (B3, &format!("{other}-{SPAN}-1")),
    ]);
    assert_eq!(extract(&h).unwrap().trace_id.to_string(), other);
}

#[test]
fn a_caller_decision_is_kept_and_a_new_trace_is_drawn_at_the_rate() {
    let mut rng = fastrand::Rng::with_seed(7);
    let caller = traceparent(&format!("00-{TRACE}-{SPAN}-00")).unwrap();
    let child = decide(Some(&caller), 100.0, &mut rng);
    assert_eq!(child.trace_id, caller.trace_id);
    assert_eq!(child.parent_span_id, Some(caller.span_id));
    assert_ne!(child.span_id, caller.span_id);
    assert!(
        !child.sampled,
        "the caller said no; the rate does not overrule it"
    );
    let deferred = Incoming {
        sampled: None,
        ..caller.clone()
    };
    assert!(decide(Some(&deferred), 100.0, &mut rng).sampled);
    assert!(!decide(Some(&deferred), 0.0, &mut rng).sampled);
    let root = decide(None, 100.0, &mut rng);
    assert_eq!((root.parent_span_id, root.sampled), (None, true));
    assert!(!decide(None, 0.0, &mut rng).sampled);
    let hits = (0..10_000)
        .filter(|_| decide(None, 1.0, &mut rng).sampled)
        .count();
    assert!((50..=150).contains(&hits), "about 1 % of 10000: {hits}");
}

#[test]
fn injection_writes_traceparent_keeps_tracestate_and_answers_b3_in_kind() {
    let mut rng = fastrand::Rng::with_seed(1);
    let state = "vendor=abc,other=1";
    let mut h = headers(&[
        (TRACEPARENT, &format!("00-{TRACE}-{SPAN}-01")),
        (TRACESTATE, state),
    ]);
    let span = decide(extract(&h).as_ref(), 0.0, &mut rng);
    inject(&span, None, &mut h);
    let tp = format!("00-{TRACE}-{}-01", span.span_id);
    assert_eq!(h[TRACEPARENT], tp.as_str());
    assert_eq!(h[TRACESTATE], state);
    assert!(
        h.get(B3).is_none() && h.get(B3_TRACE_ID).is_none(),
        "no B3 unless asked"
    );
    // What a proxy writes, the next one reads back as its parent.
    let next = extract(&h).unwrap();
    assert_eq!((next.span_id, next.sampled), (span.span_id, Some(true)));

    let mut single = headers(&[(B3, &format!("{TRACE}-{SPAN}"))]);
    let incoming = extract(&single).unwrap();
    let span = decide(Some(&incoming), 100.0, &mut rng);
    inject(&span, incoming.b3, &mut single);
    assert_eq!(
        single[B3],
        format!("{TRACE}-{}-1-{SPAN}", span.span_id).as_str()
    );
    assert_eq!(
        single[TRACEPARENT],
        format!("00-{TRACE}-{}-01", span.span_id).as_str()
    );

    let mut multi = headers(&[(B3_TRACE_ID, TRACE), (B3_SPAN_ID, SPAN), (B3_FLAGS, "1")]);
    let incoming = extract(&multi).unwrap();
    let span = decide(Some(&incoming), 0.0, &mut rng);
    inject(&span, incoming.b3, &mut multi);
    assert_eq!(multi[B3_TRACE_ID], TRACE);
    assert_eq!(multi[B3_SPAN_ID], span.span_id.to_string().as_str());
    assert_eq!(multi[B3_PARENT_SPAN_ID], SPAN);
    assert_eq!(multi[B3_SAMPLED], "1", "debug means sampled");
    assert!(multi.get(B3_FLAGS).is_none());
}
