//! `AuthorizationPolicy` (allow/deny by identity, namespace, port, method, path, header) and
//! `TrafficPolicy` (load balancing, connection limits, outlier detection, retries, timeouts,
//! local rate limiting).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::meta::{LabelSelector, ObjectMeta};

/// Enforced by the server-side proxy. DENY wins over ALLOW; a workload selected by any ALLOW
/// policy refuses what no ALLOW rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationPolicy {
    pub metadata: ObjectMeta,
    /// The workloads the policy applies to, its action and its rules. Absent: `action: ALLOW`
    /// with no selector and no rules, which denies every request to every workload in the
    /// namespace.
    #[serde(default)]
    pub spec: AuthorizationPolicySpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationPolicySpec {
    /// Workloads in the policy's namespace it applies to. Absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// `ALLOW` (default) or `DENY`.
    #[serde(default)]
    pub action: AuthorizationAction,
    /// A request matching any rule gets the action. An ALLOW policy with no rules allows nothing.
    #[serde(default)]
    pub rules: Vec<AuthorizationRule>,
    /// Attaches the policy to a waypoint instead of selecting workloads: a waypoint Gateway
    /// (`kind: Gateway`, `group: gateway.networking.k8s.io`) for all traffic through it, or a
    /// Service (`kind: Service`) for the traffic to that Service through its waypoint. The
    /// waypoint enforces it, with the client's identity and the full HTTP request. Not together
    /// with `selector`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetRef>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthorizationAction {
    #[default]
    Allow,
    Deny,
}

/// Matches when every non-empty part matches (any entry within a list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationRule {
    /// Who sends. Empty: anyone.
    #[serde(default)]
    pub from: Vec<RuleFrom>,
    /// What is asked for. Empty: anything.
    #[serde(default)]
    pub to: Vec<RuleTo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleFrom {
    /// The peer. Matches when every non-empty field below matches.
    pub source: Source,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// Peer identities: `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`, or the short form
    /// `<trust-domain>/ns/<ns>/sa/<sa>`; `*` as a prefix or suffix wildcard.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Peer identities excluded: the source does not match a peer listed here. Same form and
    /// wildcards as `principals`.
    #[serde(default)]
    pub not_principals: Vec<String>,
    /// Peer namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Peer namespaces excluded: the source does not match a peer from one of these.
    #[serde(default)]
    pub not_namespaces: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleTo {
    /// The request. Matches when every non-empty field below matches.
    pub operation: Operation,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// Destination ports (L4).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Destination ports excluded (L4).
    #[serde(default)]
    pub not_ports: Vec<u16>,
    /// HTTP methods (L7: makes the rule apply to HTTP only).
    #[serde(default)]
    pub methods: Vec<String>,
    /// HTTP methods excluded (L7).
    #[serde(default)]
    pub not_methods: Vec<String>,
    /// HTTP paths; `*` as a prefix or suffix wildcard (L7).
    #[serde(default)]
    pub paths: Vec<String>,
    /// HTTP paths excluded; `*` as a prefix or suffix wildcard (L7).
    #[serde(default)]
    pub not_paths: Vec<String>,
    /// Request headers that must be present with one of the listed values; `*` matches any (L7).
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
}

impl Operation {
    /// True when the operation needs to see HTTP to decide.
    pub fn is_l7(&self) -> bool {
        !(self.methods.is_empty()
            && self.not_methods.is_empty()
            && self.paths.is_empty()
            && self.not_paths.is_empty()
            && self.headers.is_empty())
    }
}

/// Per-service behaviour: how proxies that call the Service balance, limit, eject and retry, and
/// how many requests each of its pods accepts (`localRateLimit`, enforced on the server side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicy {
    pub metadata: ObjectMeta,
    /// The target Services and how calling proxies treat their traffic.
    pub spec: TrafficPolicySpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicySpec {
    /// The Services this policy applies to (`kind: Service`), in the policy's namespace.
    pub target_refs: Vec<PolicyTargetRef>,
    /// How a calling proxy picks one of the Service's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// Limits and timeouts of the connections a calling proxy opens to the endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPool>,
    /// Ejects endpoints that keep failing from load balancing for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// How a calling proxy retries failed requests to the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// Default timeout of a whole request to the Service, retries included. Routes may override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// A token bucket per destination pod: each pod of the Service accepts `requests` HTTP
    /// requests per `per` (bursts up to `burst`) and answers the rest `429`. Enforced by the
    /// pod's sidecar, or by the Service's waypoint (a bucket per waypoint instance); not by
    /// ambient mode's node proxy, which is L4 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_rate_limit: Option<LocalRateLimit>,
}

/// A token bucket: it holds up to `burst` tokens and refills continuously at `requests` per
/// `per`; each request takes one, and a request that finds none is answered `429`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRateLimit {
    /// Requests accepted per `per`, at least 1.
    #[schemars(range(min = 1))]
    pub requests: u32,
    /// The window `requests` are counted over, e.g. `1s` or `1m`; more than zero.
    pub per: Duration,
    /// Requests accepted at once after a quiet spell (the bucket's size), at least `requests`.
    /// Default: `requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

impl LocalRateLimit {
    /// The bucket's size: `burst`, or `requests`.
    pub fn capacity(&self) -> u32 {
        self.burst.unwrap_or(self.requests)
    }

    /// What is wrong with the limit, if anything: the field (under `localRateLimit`), the
    /// problem, and the fix.
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        let per = self.per.as_std();
        if self.requests == 0 {
            return Some((
                "requests",
                "requests is 0: the limit would refuse every request".into(),
                "write at least 1; to refuse all traffic use an AuthorizationPolicy".into(),
            ));
        }
        if per.is_zero() {
            return Some((
                "per",
                "per is 0: a rate needs a window".into(),
                "write a duration such as 1s or 1m".into(),
            ));
        }
        if per.as_nanos() < u128::from(self.requests) {
            return Some((
                "per",
                format!(
                    "{} requests per {} is more than one per nanosecond",
                    self.requests, self.per
                ),
                "count over a longer window (per: 1s)".into(),
            ));
        }
        match self.burst {
            Some(b) if b < self.requests => Some((
                "burst",
                format!(
                    "burst {b} is below requests {}: the bucket could never hold a full window's requests",
                    self.requests
                ),
                format!(
                    "write burst: {} or more, or leave it out (it defaults to requests)",
                    self.requests
                ),
            )),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetRef {
    /// Default: `""` (core).
    #[serde(default)]
    pub group: String,
    /// `Service`.
    pub kind: String,
    /// Name of the Service, in the policy's namespace.
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    /// `LEAST_REQUEST` (default: power of two choices on outstanding requests), `ROUND_ROBIN`
    /// or `RANDOM`.
    #[serde(default, rename = "type")]
    pub lb_type: LoadBalancerType,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LoadBalancerType {
    #[default]
    LeastRequest,
    RoundRobin,
    Random,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionPool {
    /// Connections per endpoint. Default: 1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Requests waiting for a connection before new ones are refused. Default: 1024.
    #[serde(default = "default_max_connections")]
    pub max_pending_requests: u32,
    /// Requests per connection before it is recycled; 0 = unlimited (default).
    #[serde(default)]
    pub max_requests_per_connection: u32,
    /// Default: 5s.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Duration,
    /// Idle connections are closed after this. Default: 90s.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Duration,
}

fn default_max_connections() -> u32 {
    1024
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(90)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// Consecutive 5xx or connect failures that eject an endpoint. Default: 5.
    #[serde(default = "default_consecutive_errors")]
    pub consecutive_errors: u32,
    /// Default: 10s.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// First ejection lasts this long, then grows linearly. Default: 30s.
    #[serde(default = "default_ejection")]
    pub base_ejection_time: Duration,
    /// At most this share of endpoints is ejected at once. Default: 50.
    #[serde(default = "default_max_ejection")]
    pub max_ejection_percent: u32,
}

fn default_consecutive_errors() -> u32 {
    5
}
fn default_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_ejection() -> Duration {
    Duration::from_secs(30)
}
fn default_max_ejection() -> u32 {
    50
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retries {
    /// Retries after the first attempt. Default: 2.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Timeout of each attempt. Default: none (the request timeout applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    /// Conditions: `connect-failure`, `reset`, `5xx` (500–599), `gateway-error` (502, 503,
    /// 504), a status code, or a gRPC status a response head carries (a trailers-only gRPC
    /// answer, which arrives as HTTP 200): `cancelled`, `deadline-exceeded`,
    /// `resource-exhausted`, `internal`, `unavailable`. As in Envoy, a gRPC status that arrives
    /// after a streamed body is not retried. Connection failures and resets are always retried
    /// when the request can be sent again: one without a body, or a gRPC call whose body (up to
    /// 64 KiB) the proxy has read whole. Default: connect-failure, reset, 503.
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<String>,
}

/// The gRPC conditions of `retryOn` (Envoy's names) and the `grpc-status` each retries.
pub const GRPC_RETRY_ON: [(&str, u32); 5] = [
    ("cancelled", 1),
    ("deadline-exceeded", 4),
    ("resource-exhausted", 8),
    ("internal", 13),
    ("unavailable", 14),
];

/// What `retryOn` retries besides connection failures and resets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// HTTP status codes, sorted, without duplicates.
    pub codes: Vec<u16>,
    /// gRPC status codes, sorted, without duplicates.
    pub grpc_codes: Vec<u32>,
}

impl Retries {
    /// The codes `retryOn` names; conditions it does not know (loading refuses them, see
    /// [`Retries::problem`]) are skipped.
    pub fn conditions(&self) -> RetryOn {
        let mut on = RetryOn::default();
        for cond in &self.retry_on {
            match condition(cond) {
                Some(Condition::Status(codes)) => on.codes.extend(codes),
                Some(Condition::Grpc(code)) => on.grpc_codes.push(code),
                Some(Condition::Connection) | None => {}
            }
        }
        on.codes.sort_unstable();
        on.codes.dedup();
        on.grpc_codes.sort_unstable();
        on.grpc_codes.dedup();
        on
    }

    /// What is wrong with the retries, if anything: the field (under `retries`), the problem,
    /// and the fix.
    pub fn problem(&self) -> Option<(String, String, String)> {
        let (i, cond) = (self.retry_on.iter().enumerate()).find(|(_, c)| condition(c).is_none())?;
        let grpc: Vec<&str> = GRPC_RETRY_ON.iter().map(|(n, _)| *n).collect();
        Some((
            format!("retryOn[{i}]"),
            format!("unknown retry condition {cond:?}"),
            format!(
                "write connect-failure, reset, 5xx, gateway-error, a status code (100-599), or a gRPC condition: {}",
                grpc.join(", ")
            ),
        ))
    }
}

/// One `retryOn` condition.
enum Condition {
    /// A connection failure or reset: always retried.
    Connection,
    Status(Vec<u16>),
    Grpc(u32),
}

/// The condition `name` stands for; None when it is not one.
fn condition(name: &str) -> Option<Condition> {
    Some(match name {
        "connect-failure" | "reset" => Condition::Connection,
        "5xx" => Condition::Status((500..=599).collect()),
        "gateway-error" => Condition::Status(vec![502, 503, 504]),
        other => match GRPC_RETRY_ON.iter().find(|(n, _)| *n == other) {
            Some((_, code)) => Condition::Grpc(*code),
            None => match other.parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => Condition::Status(vec![code]),
                _ => return None,
            },
        },
    })
}

fn default_attempts() -> u32 {
    2
}
fn default_retry_on() -> Vec<String> {
    vec!["connect-failure".into(), "reset".into(), "503".into()]
}
