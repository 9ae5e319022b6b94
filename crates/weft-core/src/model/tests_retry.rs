//! TrafficPolicy retries in the served model: `retryOn` becomes status codes and gRPC codes,
//! and the gRPC codes travel to proxies without breaking one that predates them.

use super::*;
use crate::load::parse_str;

fn policy(retry_on: &str) -> Option<Retry> {
    let yaml = format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: pricing, namespace: shop}}
spec: {{selector: {{app: pricing}}, ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {{name: retries, namespace: shop}}
spec:
  targetRefs: [{{kind: Service, name: pricing}}]
  retries: {{attempts: 3, retryOn: {retry_on}}}
"#
    );
    let out = parse_str("/cfg/mesh.yaml", &yaml);
    assert!(out.is_ok(), "{retry_on}: {:#?}", out.errors);
    let s = Snapshot::build(&out.config, &[]);
    s.services["shop/pricing"].policy.retry.clone()
}

#[test]
fn retry_on_names_become_status_and_grpc_codes() {
    // (retryOn, status codes, gRPC codes)
    let cases: [(&str, Vec<u16>, Vec<u32>); 5] = [
        ("[connect-failure, reset, \"503\"]", vec![503], vec![]),
        (
            "[gateway-error, \"429\", \"503\"]",
            vec![429, 502, 503, 504],
            vec![],
        ),
        ("[5xx]", (500..=599).collect(), vec![]),
        (
            "[unavailable, cancelled, deadline-exceeded, resource-exhausted, internal]",
            vec![],
            vec![1, 4, 8, 13, 14],
        ),
        (
            "[connect-failure, unavailable, \"503\"]",
            vec![503],
            vec![14],
        ),
    ];
    for (retry_on, codes, grpc_codes) in cases {
        let r = policy(retry_on).expect("a retry policy");
        assert_eq!(r.attempts, 3, "{retry_on}");
        assert_eq!(r.codes, codes, "{retry_on}");
        assert_eq!(r.grpc_codes, grpc_codes, "{retry_on}");
    }
}

#[test]
fn grpc_codes_are_left_out_of_the_wire_when_empty_and_optional_when_read() {
    let r = Retry {
        attempts: 2,
        codes: vec![503],
        grpc_codes: Vec::new(),
        backoff: crate::duration::Duration::from_millis(25),
    };
    let json = serde_json::to_value(&r).unwrap();
    assert!(json.get("grpcCodes").is_none(), "{json}");
    // What a control plane that predates gRPC conditions sends.
    let old: Retry = serde_json::from_value(json).unwrap();
    assert_eq!(old, r);
    let with = Retry {
        grpc_codes: vec![14],
        ..r
    };
    let json = serde_json::to_value(&with).unwrap();
    assert_eq!(json["grpcCodes"], serde_json::json!([14]));
    assert_eq!(serde_json::from_value::<Retry>(json).unwrap(), with);
}
