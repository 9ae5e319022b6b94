//! 08xx: configuration written for another mesh. weft does not read Istio's kinds, and must
//! not pass over them in silence: a VirtualService or a DENY policy that is quietly left out
//! changes where requests go and who may send them. Each one is an error that names the
//! converter.

use super::{Index, Report, Rule, Severity};

pub const RULES: &[Rule] = &[Rule {
    code: "WEFT0801",
    severity: Severity::Error,
    title: "Istio configuration that weft does not read",
    explain: "weft reads its own kinds, Gateway API routes and Kubernetes Services and \
workloads; Istio's kinds (`networking.istio.io`, `security.istio.io`, `telemetry.istio.io`, \
...) are not applied. Left in place they would be skipped, and the routing, retries, faults \
and policies they describe would silently not happen. Convert them with \
`weft import istio PATH -o DIR`: it writes the weft equivalents (HTTPRoute, TrafficPolicy, \
per-version Services, AuthorizationPolicy, mTLS mode, Gateway), marks what it could not \
convert with a `# weft import:` comment and prints a summary (docs/import-istio.md). Then use \
the converted files instead of the Istio ones.",
    bad: r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - route: [{destination: {host: web}}]
    timeout: 2s
"#,
    good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs: [{name: web, port: 80}]
    timeouts: {request: 2s}
"#,
}];

pub(super) fn check(ix: &Index<'_>, out: &mut Report) {
    for f in &ix.config.foreign {
        out.add_foreign(
            "WEFT0801",
            f,
            format!(
                "{} {} is Istio configuration ({}); weft does not read it, so what it says is not applied",
                f.kind,
                f.name,
                f.api_version
            ),
            "convert it with `weft import istio PATH -o DIR` and use the converted files instead (docs/import-istio.md)",
        );
    }
}
