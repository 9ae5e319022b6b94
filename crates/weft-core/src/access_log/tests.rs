use super::*;

fn compile(encoding: Option<Encoding>, format: serde_json::Value) -> Result<LogFormat, String> {
    let format: Option<FormatSource> = serde_json::from_value(format).unwrap();
    LogFormat::compile(encoding, format.as_ref())
}

#[test]
fn the_encoding_alone_picks_weft_record_or_istio_default_line() {
    let json = compile(None, serde_json::Value::Null).unwrap();
    assert_eq!(json.shape, Shape::Standard);
    let text = compile(Some(Encoding::Text), serde_json::Value::Null).unwrap();
    let Shape::Line(t) = &text.shape else {
        panic!("{text:?}")
    };
    assert!(t.parts.len() > 40, "Istio's default line reads whole");
    assert!(text.request_headers().iter().any(|h| h == "user-agent"));
    assert_eq!(text.response_headers(), ["x-envoy-upstream-service-time"]);
}

#[test]
fn a_format_is_a_line_or_fields_in_the_order_written() {
    let line = compile(None, "%REQ(:METHOD)% %RESPONSE_CODE%".into()).unwrap();
    assert!(matches!(line.shape, Shape::Line(_)));
    let map = serde_json::json!({"z": "%RESPONSE_CODE%", "a": "%REQ(USER-AGENT?X-CLIENT)%"});
    let fields = compile(None, map).unwrap();
    let Shape::Fields(f) = &fields.shape else {
        panic!()
    };
    assert_eq!(f[0].0, "z", "order kept");
    assert_eq!(fields.request_headers(), ["user-agent", "x-client"]);
    // Istio writes a JSON format as a JSON object in a string.
    let istio = compile(
        Some(Encoding::Json),
        r#"{"code": "%RESPONSE_CODE%", "path": "%REQ(:PATH)%"}"#.into(),
    )
    .unwrap();
    assert!(matches!(&istio.shape, Shape::Fields(f) if f.len() == 2));
}

#[test]
fn mismatches_and_mistakes_are_errors_that_say_what_to_write() {
    let e = compile(Some(Encoding::Json), "%RESPONSE_CODE%".into()).unwrap_err();
    assert!(e.contains("names each field"), "{e}");
    let e = compile(Some(Encoding::Text), serde_json::json!({"a": "%PROTOCOL%"})).unwrap_err();
    assert!(e.contains("encoding: JSON"), "{e}");
    let e = compile(None, "TEXT".into()).unwrap_err();
    assert!(e.contains("encoding: TEXT"), "{e}");
    let e = compile(None, serde_json::json!({"code": "%RESPONSE_CODEX%"})).unwrap_err();
    assert!(e.starts_with("field `code`"), "{e}");
    assert!(e.contains("did you mean `%RESPONSE_CODE%`"), "{e}");
    let e = compile(None, serde_json::json!({"n": {"nested": "%PROTOCOL%"}})).unwrap_err();
    assert!(e.contains("flat"), "{e}");
    let e = compile(None, "{not json".into()).unwrap_err();
    assert!(e.contains("not a JSON object"), "{e}");
}

#[test]
fn travels_as_written_and_is_checked_again_on_arrival() {
    let f = compile(None, serde_json::json!({"code": "%RESPONSE_CODE%"})).unwrap();
    let wire = serde_json::to_string(&f).unwrap();
    assert_eq!(wire, r#"{"format":{"code":"%RESPONSE_CODE%"}}"#);
    assert_eq!(serde_json::from_str::<LogFormat>(&wire).unwrap(), f);
    let bad = serde_json::from_str::<LogFormat>(r#"{"format":"%NOPE%"}"#);
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("unknown command operator")
    );
}
