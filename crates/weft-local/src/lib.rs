//! The local runtime behind `weft up`: each replica of a Workload is a pod (its own network
//! namespace joined to a bridge weft owns) on one of the simulated nodes, with transparent
//! capture into its sidecar or its node's proxy (ambient mode), names for Services, and
//! supervised processes; pods switch dataplane modes as the configuration changes.

pub mod addresses;
pub mod board;
pub mod canary;
pub mod cgroup;
pub mod change;
pub mod cleanup;
pub mod credentials;
pub mod enrolment;
pub mod enter;
pub mod http;
pub mod launch;
pub mod net;
pub mod operate;
pub mod plan;
pub mod ports;
pub mod prometheus;
pub mod readiness;
pub mod reason;
pub mod registration;
pub mod requests;
pub mod restart;
pub mod revisions;
pub mod rundir;
pub mod runtime;
pub mod services;
pub mod status;
pub mod supervise;
pub mod switch;
pub mod usage;
