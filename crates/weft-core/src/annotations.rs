//! The `weft.dev/` annotations and labels: names, what values they take, and how they combine
//! with the Mesh defaults into a workload's effective proxy settings.

use crate::access_log::{Encoding, FormatSource, LogFormat};
use crate::duration::{Duration, ParseDurationError};
use crate::quantity::{Cpu, Memory, ParseQuantityError};
use crate::resources::mesh::{LogLevel, MeshSpec, MtlsMode, ProxyDefaults};

mod revision;

pub use revision::{
    DEFAULT_TAG, REV_KEYS, RevisionConflict, RevisionNameError, RevisionRef, RevisionSource,
    object_revision, revision_label, valid_revision_name,
};

pub const PREFIX: &str = "weft.dev/";

// Annotations: per-workload proxy settings (a Namespace's apply to all its workloads).
pub const HOLD_APPLICATION: &str = "weft.dev/hold-application";
pub const DRAIN_DURATION: &str = "weft.dev/drain-duration";
pub const PROXY_CPU_REQUEST: &str = "weft.dev/proxy-cpu-request";
pub const PROXY_CPU_LIMIT: &str = "weft.dev/proxy-cpu-limit";
pub const PROXY_MEMORY_REQUEST: &str = "weft.dev/proxy-memory-request";
pub const PROXY_MEMORY_LIMIT: &str = "weft.dev/proxy-memory-limit";
pub const CONCURRENCY: &str = "weft.dev/concurrency";
pub const LOG_LEVEL: &str = "weft.dev/log-level";
pub const ACCESS_LOG: &str = "weft.dev/access-log";
pub const ACCESS_LOG_ENCODING: &str = "weft.dev/access-log-encoding";
pub const ACCESS_LOG_FORMAT: &str = "weft.dev/access-log-format";
pub const METRICS: &str = "weft.dev/metrics";
pub const MTLS_MODE: &str = "weft.dev/mtls-mode";
pub const TRACE_SAMPLING: &str = "weft.dev/trace-sampling";
pub const ANALYZE_IGNORE: &str = "weft.dev/analyze-ignore";

// Labels: selection and enrolment.
/// The control-plane revision or tag that serves a Namespace's or Workload's workloads.
pub const REV: &str = "weft.dev/rev";
/// Istio's revision label, read as an alias of [`REV`] so imported manifests keep their revision.
pub const ISTIO_REV: &str = "istio.io/rev";
pub const DATAPLANE_MODE: &str = "weft.dev/dataplane-mode";
pub const USE_WAYPOINT: &str = "weft.dev/use-waypoint";
/// On a waypoint Gateway: which traffic it handles (`service`, `workload` or `all`).
pub const WAYPOINT_FOR: &str = "weft.dev/waypoint-for";
/// The label a waypoint's pods carry, as a Gateway's pods do on Kubernetes: the Gateway they
/// run. Pods with it are the waypoint's endpoints.
pub const GATEWAY_NAME: &str = "gateway.networking.k8s.io/gateway-name";

/// What kind of value a key takes, for validation and for the reference page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    Duration,
    Cpu,
    Memory,
    Count,
    LogLevel,
    MtlsMode,
    Codes,
    Revision,
    DataplaneMode,
    Name,
    WaypointFor,
    Percent,
    LogEncoding,
    LogFormat,
}

/// One known key: where it goes, what it takes, what it does.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub is_label: bool,
    pub kind: ValueKind,
    pub default: &'static str,
    pub doc: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: HOLD_APPLICATION,
        is_label: false,
        kind: ValueKind::Bool,
        default: "true",
        doc: "Start the app only after its proxy is ready.",
    },
    Key {
        name: DRAIN_DURATION,
        is_label: false,
        kind: ValueKind::Duration,
        default: "5s",
        doc: "How long the proxy finishes in-flight requests on shutdown.",
    },
    Key {
        name: PROXY_CPU_REQUEST,
        is_label: false,
        kind: ValueKind::Cpu,
        default: "20m",
        doc: "Proxy CPU request.",
    },
    Key {
        name: PROXY_CPU_LIMIT,
        is_label: false,
        kind: ValueKind::Cpu,
        default: "1",
        doc: "Proxy CPU limit (at least 100m).",
    },
    Key {
        name: PROXY_MEMORY_REQUEST,
        is_label: false,
        kind: ValueKind::Memory,
        default: "24Mi",
        doc: "Proxy memory request.",
    },
    Key {
        name: PROXY_MEMORY_LIMIT,
        is_label: false,
        kind: ValueKind::Memory,
        default: "128Mi",
        doc: "Proxy memory limit (at least 32Mi).",
    },
    Key {
        name: CONCURRENCY,
        is_label: false,
        kind: ValueKind::Count,
        default: "2",
        doc: "Proxy worker threads.",
    },
    Key {
        name: LOG_LEVEL,
        is_label: false,
        kind: ValueKind::LogLevel,
        default: "info",
        doc: "Proxy log level: trace, debug, info, warn, error.",
    },
    Key {
        name: ACCESS_LOG,
        is_label: false,
        kind: ValueKind::Bool,
        default: "true",
        doc: "Access log to stdout, one line per request or connection.",
    },
    Key {
        name: ACCESS_LOG_ENCODING,
        is_label: false,
        kind: ValueKind::LogEncoding,
        default: "JSON",
        doc: "Access-log encoding, JSON or TEXT; the Mesh's accessLog.encoding by default.",
    },
    Key {
        name: ACCESS_LOG_FORMAT,
        is_label: false,
        kind: ValueKind::LogFormat,
        default: "weft's JSON record",
        doc: "Access-log format with Envoy command operators: a line of text (`%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%`), or a JSON object of field names to templates; the Mesh's accessLog.format by default.",
    },
    Key {
        name: METRICS,
        is_label: false,
        kind: ValueKind::Bool,
        default: "true",
        doc: "Prometheus metrics on the Mesh's metrics.port (15020 by default).",
    },
    Key {
        name: TRACE_SAMPLING,
        is_label: false,
        kind: ValueKind::Percent,
        default: "1",
        doc: "Percentage of the requests this workload's proxy starts a trace for (0 to 100); the Mesh's tracing.samplingPercent by default. A request that arrives traced keeps its caller's decision.",
    },
    Key {
        name: MTLS_MODE,
        is_label: false,
        kind: ValueKind::MtlsMode,
        default: "STRICT",
        doc: "Inbound mTLS mode: STRICT, PERMISSIVE or DISABLE.",
    },
    Key {
        name: ANALYZE_IGNORE,
        is_label: false,
        kind: ValueKind::Codes,
        default: "",
        doc: "Analyzer codes not reported for this resource, comma-separated (e.g. WEFT0304,WEFT0306).",
    },
    Key {
        name: REV,
        is_label: true,
        kind: ValueKind::Revision,
        default: "default",
        doc: "Control-plane revision, or tag pointing at one, that serves the workloads (canary upgrades). A Workload's wins over its Namespace's; `istio.io/rev` is read the same way.",
    },
    Key {
        name: DATAPLANE_MODE,
        is_label: true,
        kind: ValueKind::DataplaneMode,
        default: "sidecar",
        doc: "sidecar, ambient (node proxy) or none (not in the mesh).",
    },
    Key {
        name: USE_WAYPOINT,
        is_label: true,
        kind: ValueKind::Name,
        default: "",
        doc: "Name of the waypoint Gateway (class weft-waypoint) that handles L7 for these workloads, or `none`.",
    },
    Key {
        name: WAYPOINT_FOR,
        is_label: true,
        kind: ValueKind::WaypointFor,
        default: "service",
        doc: "On a waypoint Gateway: the traffic it handles, to Services (`service`), to pods by their address (`workload`), or both (`all`).",
    },
];

pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The known key closest to a misspelled one, if any is close.
pub fn closest(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (strsim::damerau_levenshtein(name, k.name), k.name))
        .filter(|(d, _)| *d <= 4)
        .min()
        .map(|(_, n)| n)
}

/// Why a value does not fit its key, and what is expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error(transparent)]
    Duration(#[from] ParseDurationError),
    #[error(transparent)]
    Quantity(#[from] ParseQuantityError),
    #[error("{value:?} is not {}", expected(*.kind))]
    Invalid { value: String, kind: ValueKind },
    #[error("access-log format: {0}")]
    Format(String),
}

/// Checks a value for a key, returning what was wrong and what is expected.
pub fn check_value(kind: ValueKind, value: &str) -> Result<(), ValueError> {
    let ok = match kind {
        ValueKind::Bool => parse_bool(value).is_some(),
        ValueKind::Duration => return value.parse::<Duration>().map(drop).map_err(Into::into),
        ValueKind::Cpu => return value.parse::<Cpu>().map(drop).map_err(Into::into),
        ValueKind::Memory => return value.parse::<Memory>().map(drop).map_err(Into::into),
        ValueKind::Count => value.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n)),
        ValueKind::LogLevel => value.parse::<LogLevel>().is_ok(),
        ValueKind::MtlsMode => value.parse::<MtlsMode>().is_ok(),
        ValueKind::Codes => value.split(',').all(|c| is_code(c.trim())),
        ValueKind::Revision => valid_revision_name(value).is_ok(),
        ValueKind::Name => crate::meta::check_dns_label(value).is_ok(),
        ValueKind::DataplaneMode => DataplaneMode::parse(value).is_some(),
        ValueKind::WaypointFor => WaypointFor::parse(value).is_some(),
        ValueKind::Percent => parse_percent(value).is_some(),
        ValueKind::LogEncoding => value.parse::<Encoding>().is_ok(),
        ValueKind::LogFormat => {
            let format = FormatSource::Template(value.to_string());
            return LogFormat::compile(None, Some(&format))
                .map(drop)
                .map_err(ValueError::Format);
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ValueError::Invalid {
            value: value.to_string(),
            kind,
        })
    }
}

fn expected(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Bool => "a boolean (\"true\" or \"false\")",
        ValueKind::Duration => "a duration like 5s",
        ValueKind::Cpu => "a CPU quantity like 100m",
        ValueKind::Memory => "a memory quantity like 64Mi",
        ValueKind::Count => "a whole number from 1 to 64",
        ValueKind::LogLevel => "one of trace, debug, info, warn, error",
        ValueKind::MtlsMode => "one of STRICT, PERMISSIVE, DISABLE",
        ValueKind::Codes => "a comma-separated list of codes like WEFT0304",
        ValueKind::Revision => {
            "a revision or tag name (lower-case letters, digits, '-'; starting with a letter)"
        }
        ValueKind::Name => "a DNS label (lower-case letters, digits, '-')",
        ValueKind::DataplaneMode => "one of sidecar, ambient, none",
        ValueKind::WaypointFor => "one of service, workload, all",
        ValueKind::Percent => "a percentage from 0 to 100, like 1 or 0.5",
        ValueKind::LogEncoding => "JSON or TEXT",
        ValueKind::LogFormat => "an access-log format",
    }
}

fn is_code(s: &str) -> bool {
    s.len() == 8 && s.starts_with("WEFT") && s[4..].bytes().all(|b| b.is_ascii_digit())
}

/// A percentage from 0 to 100.
pub fn parse_percent(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
}

pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "True" | "TRUE" | "on" => Some(true),
        "false" | "False" | "FALSE" | "off" => Some(false),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataplaneMode {
    Sidecar,
    Ambient,
    None,
}

impl DataplaneMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sidecar" => Some(DataplaneMode::Sidecar),
            "ambient" => Some(DataplaneMode::Ambient),
            "none" => Some(DataplaneMode::None),
            _ => None,
        }
    }
}

/// Which traffic a waypoint handles (`weft.dev/waypoint-for`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaypointFor {
    /// Traffic to the Services that use it (the default).
    #[default]
    Service,
    /// Traffic to the pods that use it, sent to their own address.
    Workload,
    All,
}

impl WaypointFor {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "service" => Some(WaypointFor::Service),
            "workload" => Some(WaypointFor::Workload),
            "all" => Some(WaypointFor::All),
            _ => None,
        }
    }

    pub fn services(self) -> bool {
        self != WaypointFor::Workload
    }

    pub fn workloads(self) -> bool {
        self != WaypointFor::Service
    }
}

/// A workload's effective proxy settings: Mesh defaults, then the Namespace's annotations,
/// then the Workload's. Invalid values are skipped here (the analyzer reports them).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxySettings {
    pub hold_application: bool,
    pub drain_duration: Duration,
    pub cpu_request: Cpu,
    pub cpu_limit: Cpu,
    pub memory_request: Memory,
    pub memory_limit: Memory,
    pub concurrency: u32,
    pub log_level: LogLevel,
    pub access_log: bool,
    /// How access-log lines are written.
    #[serde(default)]
    pub access_log_format: LogFormat,
    pub metrics: bool,
    pub mtls_mode: MtlsMode,
    pub dataplane_mode: DataplaneMode,
    /// Trace propagation is always on; this says which requests start a sampled trace and
    /// where sampled spans go.
    #[serde(default)]
    pub tracing: TraceSettings,
}

/// A workload's tracing: the Mesh's `tracing`, its sampling overridden by
/// `weft.dev/trace-sampling`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSettings {
    /// The OTLP/gRPC collector sampled spans are exported to (`host:port` or
    /// `http://host:port`); None: spans are not exported (headers are still propagated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<String>,
    /// Percentage (0 to 100) of the requests arriving without a trace that start a sampled one.
    pub sampling_percent: f64,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings::from(&crate::resources::mesh::Tracing::default())
    }
}

impl From<&crate::resources::mesh::Tracing> for TraceSettings {
    fn from(t: &crate::resources::mesh::Tracing) -> Self {
        TraceSettings {
            collector: t.endpoint.clone().filter(|_| t.enabled),
            sampling_percent: t.sampling_percent,
        }
    }
}

/// Where an effective setting came from, for messages.
pub type Layers<'a> = [&'a std::collections::BTreeMap<String, String>];

impl ProxySettings {
    /// `layers` are annotation maps from least to most specific (namespace, then workload);
    /// `labels` likewise for the dataplane mode.
    pub fn resolve(mesh: &MeshSpec, annotations: &Layers<'_>, labels: &Layers<'_>) -> Self {
        let ProxyDefaults {
            hold_application,
            drain_duration,
            resources,
            concurrency,
            log_level,
        } = mesh.proxy.clone();
        let get = |key: &str| annotations.iter().rev().find_map(|m| m.get(key));
        fn pick<T: std::str::FromStr>(v: Option<&String>, default: T) -> T {
            v.and_then(|s| s.parse().ok()).unwrap_or(default)
        }
        let pick_bool =
            |key: &str, default: bool| get(key).and_then(|v| parse_bool(v)).unwrap_or(default);
        ProxySettings {
            hold_application: pick_bool(HOLD_APPLICATION, hold_application),
            drain_duration: pick(get(DRAIN_DURATION), drain_duration),
            cpu_request: pick(get(PROXY_CPU_REQUEST), resources.requests.cpu),
            cpu_limit: pick(get(PROXY_CPU_LIMIT), resources.limits.cpu),
            memory_request: pick(get(PROXY_MEMORY_REQUEST), resources.requests.memory),
            memory_limit: pick(get(PROXY_MEMORY_LIMIT), resources.limits.memory),
            concurrency: pick(get(CONCURRENCY), concurrency),
            log_level: pick(get(LOG_LEVEL), log_level),
            access_log: pick_bool(ACCESS_LOG, mesh.access_log.enabled),
            access_log_format: log_format(mesh, get(ACCESS_LOG_ENCODING), get(ACCESS_LOG_FORMAT)),
            metrics: pick_bool(METRICS, mesh.metrics.enabled),
            mtls_mode: pick(get(MTLS_MODE), mesh.mtls.mode),
            dataplane_mode: labels
                .iter()
                .rev()
                .find_map(|m| m.get(DATAPLANE_MODE).and_then(|v| DataplaneMode::parse(v)))
                .unwrap_or(DataplaneMode::Sidecar),
            tracing: TraceSettings {
                sampling_percent: get(TRACE_SAMPLING)
                    .and_then(|v| parse_percent(v))
                    .unwrap_or(mesh.tracing.sampling_percent),
                ..TraceSettings::from(&mesh.tracing)
            },
        }
    }
}

/// A workload's access-log format: its annotations when it has them, the Mesh's otherwise.
/// An encoding alone keeps the Mesh's format when it fits, else that encoding's default; a
/// format that does not check (the analyzer reports it) leaves the Mesh's in force.
fn log_format(mesh: &MeshSpec, encoding: Option<&String>, format: Option<&String>) -> LogFormat {
    let encoding = encoding.and_then(|e| e.parse::<Encoding>().ok());
    let own = format.map(|f| FormatSource::Template(f.clone()));
    let mesh_log = &mesh.access_log;
    let tried = match (encoding, own) {
        (None, None) => return mesh_log.log_format(),
        (e, Some(f)) => LogFormat::compile(e, Some(&f)),
        (Some(e), None) => LogFormat::compile(Some(e), mesh_log.format.as_ref())
            .or_else(|_| LogFormat::compile(Some(e), None)),
    };
    tried.unwrap_or_else(|_| mesh_log.log_format())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_format_comes_from_the_workload_then_the_mesh() {
        use crate::access_log::Shape;
        let mut mesh = MeshSpec::default();
        mesh.access_log.format = Some(FormatSource::Fields(
            serde_json::from_str(r#"{"code": "%RESPONSE_CODE%"}"#).unwrap(),
        ));
        let resolve = |pairs: &[(&str, &str)]| {
            let ann = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            ProxySettings::resolve(&mesh, &[&ann], &[])
                .access_log_format
                .shape
        };
        assert!(matches!(resolve(&[]), Shape::Fields(f) if f[0].0 == "code"));
        let own = resolve(&[(ACCESS_LOG_FORMAT, "%REQ(:PATH)% %RESPONSE_CODE%")]);
        assert!(matches!(own, Shape::Line(t) if t.parts.len() == 3));
        // TEXT alone cannot use the Mesh's fields: Istio's default line then.
        let text = resolve(&[(ACCESS_LOG_ENCODING, "text")]);
        assert!(matches!(text, Shape::Line(t) if t.parts.len() > 40));
        // A format that does not check leaves the Mesh's in force.
        let bad = resolve(&[(ACCESS_LOG_FORMAT, "%NOPE%")]);
        assert!(matches!(bad, Shape::Fields(_)));
    }

    #[test]
    fn tracing_takes_the_mesh_collector_and_the_most_specific_sampling() {
        let mut mesh = MeshSpec::default();
        let none = ProxySettings::resolve(&mesh, &[], &[]).tracing;
        assert_eq!(none, TraceSettings::default());
        assert_eq!((none.collector, none.sampling_percent), (None, 1.0));
        mesh.tracing.endpoint = Some("collector:4317".into());
        let off = ProxySettings::resolve(&mesh, &[], &[]).tracing;
        assert_eq!(
            off.collector, None,
            "an endpoint alone, not enabled, exports nothing"
        );
        mesh.tracing.enabled = true;
        let ns = [(TRACE_SAMPLING.to_string(), "10".to_string())].into();
        let bad = [(TRACE_SAMPLING.to_string(), "200".to_string())].into();
        let t = ProxySettings::resolve(&mesh, &[&ns], &[]).tracing;
        assert_eq!(t.collector.as_deref(), Some("collector:4317"));
        assert_eq!(t.sampling_percent, 10.0);
        let t = ProxySettings::resolve(&mesh, &[&ns, &bad], &[]).tracing;
        assert_eq!(
            t.sampling_percent, 1.0,
            "an invalid value falls back to the Mesh's"
        );
        assert!(check_value(ValueKind::Percent, "0.5").is_ok());
        assert!(check_value(ValueKind::Percent, "-1").is_err());
    }

    #[test]
    fn value_errors_say_what_is_expected() {
        assert_eq!(check_value(ValueKind::Bool, "on"), Ok(()));
        assert_eq!(
            check_value(ValueKind::Bool, "yes").unwrap_err().to_string(),
            "\"yes\" is not a boolean (\"true\" or \"false\")"
        );
        assert_eq!(
            check_value(ValueKind::Name, "Web").unwrap_err().to_string(),
            "\"Web\" is not a DNS label (lower-case letters, digits, '-')"
        );
        let duration = check_value(ValueKind::Duration, "5 parsecs").unwrap_err();
        assert!(matches!(duration, ValueError::Duration(_)), "{duration:?}");
        assert_eq!(
            duration.to_string(),
            "5 parsecs".parse::<Duration>().unwrap_err().to_string()
        );
        let memory = check_value(ValueKind::Memory, "lots").unwrap_err();
        assert!(matches!(memory, ValueError::Quantity(_)), "{memory:?}");
    }
}
