//! Runs the real `weft` binary over configurations written the way new users write them. Each
//! fixture's first lines say what must be reported: `# expect: CODE ...` (exactly these codes)
//! and `# expect-config-error: LINE:COL PATH TEXT` (a load error at that place).

use std::path::Path;
use std::process::Command;

fn weft(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run weft");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_demo_analyzes_clean() {
    let (code, out, err) = weft(&["analyze", "examples/shop"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("0 errors, 0 warnings, 0 info in 20 resources from 7 files"),
        "{out}"
    );
    // The ambient shop too: L4 policies at the node proxies, pricing's L7 one at its waypoint.
    let (code, out, err) = weft(&["analyze", "examples/shop-ambient"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("0 errors, 0 warnings, 0 info in 22 resources from 7 files"),
        "{out}"
    );
}

#[test]
fn fixtures_get_exactly_the_expected_findings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let (code, out, err) = weft(&["analyze", "-o", "json", path.to_str().unwrap()]);
        let report: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        let mut want_codes: Vec<&str> = Vec::new();
        for line in text.lines().take_while(|l| l.starts_with('#')) {
            if let Some(codes) = line.strip_prefix("# expect: ") {
                want_codes.extend(codes.split_whitespace());
            }
            if let Some(spec) = line.strip_prefix("# expect-config-error: ") {
                let (pos, rest) = spec.split_once(' ').unwrap();
                let (path_field, text) = rest.split_once(' ').unwrap();
                let found = report["configErrors"].as_array().unwrap().iter().any(|e| {
                    format!("{}:{}", e["location"]["line"], e["location"]["column"]) == pos
                        && e["path"] == path_field
                        && format!("{} {}", e["message"], e["hint"]).contains(text)
                });
                assert!(
                    found,
                    "{}: no config error {spec:?} in {:#}",
                    path.display(),
                    report["configErrors"]
                );
            }
        }
        let mut got: Vec<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        got.sort();
        got.dedup();
        want_codes.sort();
        assert_eq!(
            got,
            want_codes,
            "{}: {:#}",
            path.display(),
            report["findings"]
        );
        let has_errors = report["summary"]["errors"].as_u64().unwrap() > 0;
        assert_eq!(code, if has_errors { 1 } else { 0 }, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 4);
}

#[test]
fn fail_on_warning_turns_warnings_into_failure() {
    let f = "crates/weft-cli/tests/fixtures/policies.yaml";
    assert_eq!(weft(&["analyze", f]).0, 0, "warnings only");
    assert_eq!(weft(&["analyze", "--fail-on", "warning", f]).0, 1);
}

#[test]
fn explain_and_list_rules() {
    let (code, out, _) = weft(&["analyze", "--explain", "weft0103"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("backend Service does not exist") && out.contains("Good:"),
        "{out}"
    );
    let (code, _, err) = weft(&["analyze", "--explain", "WEFT9999"]);
    assert_eq!(code, 2);
    assert!(err.contains("--list-rules"), "{err}");
    let (_, out, _) = weft(&["analyze", "--list-rules"]);
    assert!(out.lines().count() >= 25);
}

#[test]
fn missing_path_is_a_clear_error() {
    let (code, out, _) = weft(&["analyze", "no/such/dir"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("no/such/dir") && out.contains("cannot read"),
        "{out}"
    );
}

#[test]
fn yaml_output_is_yaml() {
    let (_, out, _) = weft(&[
        "analyze",
        "-o",
        "yaml",
        "crates/weft-cli/tests/fixtures/policies.yaml",
    ]);
    assert!(
        out.starts_with("configErrors: []\nfindings:\n  - code: \""),
        "{out}"
    );
}
