//! One realistic document per kind, shown on the reference page (and tested to load).

use crate::resources::Kind;

/// The example document of `kind`, as YAML.
pub fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Mesh => MESH,
        Kind::Namespace => NAMESPACE,
        Kind::Workload => WORKLOAD,
        Kind::Service => SERVICE,
        Kind::HttpRoute => HTTP_ROUTE,
        Kind::GrpcRoute => GRPC_ROUTE,
        Kind::TcpRoute => TCP_ROUTE,
        Kind::Gateway => GATEWAY,
        Kind::AuthorizationPolicy => AUTHORIZATION_POLICY,
        Kind::TrafficPolicy => TRAFFIC_POLICY,
        Kind::Fault => FAULT,
    }
}

const MESH: &str = r#"# Every field has a best-practice default; this Mesh spells most of them out.
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata:
  name: mesh
spec:
  trustDomain: shop.local
  mtls:
    mode: STRICT
  proxy:
    holdApplication: true
    drainDuration: 5s
    resources:
      requests: {cpu: 20m, memory: 24Mi}
      limits: {cpu: "1", memory: 128Mi}
    concurrency: 2
    logLevel: info
  accessLog:
    enabled: true
    encoding: JSON
    format: {time: "%START_TIME%", method: "%REQ(:METHOD)%", path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", code: "%RESPONSE_CODE%", flags: "%RESPONSE_FLAGS%", ms: "%DURATION%", peer: "%DOWNSTREAM_PEER_URI_SAN%"}
  metrics: {enabled: true, port: 15020}
  tracing:
    enabled: true
    endpoint: http://127.0.0.1:4317
    samplingPercent: 5
  outboundTrafficPolicy: REGISTRY_ONLY
"#;

const NAMESPACE: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    weft.dev/dataplane-mode: sidecar
  annotations:
    # Applies to every workload in the namespace unless the workload sets its own.
    weft.dev/drain-duration: 10s
"#;

const WORKLOAD: &str = r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: catalog
  namespace: shop
  labels: {app: catalog, version: v1}
  annotations:
    weft.dev/proxy-memory-limit: 64Mi
spec:
  command: [python3, -m, http.server]
  args: ["8080"]
  env:
  - {name: PRICING_URL, value: "http://pricing:8080"}
  replicas: 2
  serviceAccountName: catalog
  ports:
  - {name: http, containerPort: 8080}
"#;

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: shop}
spec:
  selector: {app: catalog}
  ports:
  - {name: http, port: 8080, targetPort: http, appProtocol: http}
"#;

const HTTP_ROUTE: &str = r#"# Beta testers get pricing v2; everyone else is split 90/10 between v1 and v2.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: pricing, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: pricing, port: 8080}
  rules:
  - name: beta-testers
    matches:
    - headers: [{name: x-beta, value: "true"}]
    backendRefs: [{name: pricing-v2, port: 8080}]
  - name: split
    matches:
    - path: {type: PathPrefix, value: /price}
    backendRefs:
    - {name: pricing-v1, port: 8080, weight: 90}
    - {name: pricing-v2, port: 8080, weight: 10}
    timeouts: {request: 2s, backendRequest: 500ms}
    retry: {attempts: 2, codes: [503], backoff: 25ms}
"#;

const GRPC_ROUTE: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: quotes, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: quotes, port: 9090}
  rules:
  - matches:
    - method: {service: shop.Pricing, method: Quote}
    backendRefs: [{name: quotes-v2, port: 9090}]
  - backendRefs: [{name: quotes-v1, port: 9090}]
"#;

const TCP_ROUTE: &str = r#"apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: orders-db, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: orders-db, port: 5432}
  rules:
  - backendRefs: [{name: orders-db-primary, port: 5432}]
"#;

const GATEWAY: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: weft
  listeners:
  - name: http
    port: 8080
    protocol: HTTP
    allowedRoutes:
      namespaces: {from: Same}
"#;

const AUTHORIZATION_POLICY: &str = r#"# Only catalog and cart may read prices.
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: pricing, namespace: shop}
spec:
  selector: {matchLabels: {app: pricing}}
  action: ALLOW
  rules:
  - from:
    - source:
        principals:
        - spiffe://shop.local/ns/shop/sa/catalog
        - spiffe://shop.local/ns/shop/sa/cart
    to:
    - operation: {methods: [GET], paths: ["/price/*"]}
"#;

const TRAFFIC_POLICY: &str = r#"apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: pricing, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: pricing}]
  loadBalancer: {type: LEAST_REQUEST}
  connectionPool: {maxConnections: 256, connectTimeout: 2s}
  outlierDetection: {consecutiveErrors: 5, interval: 10s, baseEjectionTime: 30s}
  retries: {attempts: 2, perTryTimeout: 500ms, retryOn: [connect-failure, reset, "503"]}
  timeout: 3s
  # Each pricing pod takes 100 requests a second (bursts of 200) and answers the rest 429.
  localRateLimit: {requests: 100, per: 1s, burst: 200}
"#;

const FAULT: &str = r#"# Referenced from a route rule: filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: Fault, name: ratings-delay}}]
apiVersion: weft.dev/v1alpha1
kind: Fault
metadata: {name: ratings-delay, namespace: shop}
spec:
  delay: {fixedDelay: 2s, percentage: 50}
  abort: {httpStatus: 503, percentage: 10}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_loads_as_its_kind() {
        for kind in Kind::ALL {
            let out = crate::parse_str(&format!("{kind}.yaml"), example(kind));
            assert!(out.is_ok(), "{kind} example: {:#?}", out.errors);
            let kinds: Vec<Kind> = out
                .config
                .resources
                .iter()
                .map(|r| r.resource.kind())
                .collect();
            assert_eq!(kinds, [kind], "{kind} example");
            assert!(out.config.skipped.is_empty(), "{kind} example");
        }
    }
}
