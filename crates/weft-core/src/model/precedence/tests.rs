use super::*;

#[test]
fn timestamps_parse_to_comparable_instants() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
    assert_eq!(
        parse_rfc3339("2024-03-01T00:00:00Z"),
        Some((1_709_251_200, 0))
    );
    assert_eq!(
        parse_rfc3339("2024-03-01T01:00:00.5+01:00"),
        Some((1_709_251_200, 500_000_000))
    );
    for bad in [
        "",
        "yesterday",
        "2024-13-01T00:00:00Z",
        "2024-03-01T00:00:00",
        "2024-03-01",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
}
