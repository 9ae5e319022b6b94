//! The canary judge of `weft upgrade`: after each step of moving workloads to a new
//! control-plane revision, compare the golden signals of the pods already on the new revision
//! (the canary) with those still on the old one (the baseline) over the same window, and say
//! whether the step may go on. Pure: the caller scrapes `GET http://POD_IP:15020/metrics` and
//! hands the text in.
//!
//! The flow, one stage per file:
//!
//! - [`scrape`]: a proxy's metrics text → a [`Sample`] (request, error and latency totals of
//!   that pod, over every direction and service).
//! - [`sample`]: [`Sample::delta`] between two scrapes of a pod (the window),
//!   [`sum`] over the pods of one side, [`Sample::figures`] → [`Figures`]
//!   (requests, error rate, p99).
//! - [`mod@judge`]: canary [`Figures`] against baseline [`Figures`] under an [`Slo`] → a
//!   [`Verdict`].
//!
//! When every pod has moved there is no baseline left in the window: the caller passes the
//! baseline figures of the previous step instead (see [`judge()`]).

pub mod judge;
pub mod sample;
pub mod scrape;

pub use judge::{Slo, Verdict, describe, judge, parse_percent, parse_percent_points};
pub use sample::{Figures, Sample, sum};
pub use scrape::parse;

/// Why a scrape or a flag could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A line of a family the judge reads is malformed (other families are never looked at).
    #[error("metrics line {line}: {reason}: `{text}`")]
    Scrape {
        line: usize,
        reason: String,
        text: String,
    },
    /// A percentage given on the command line.
    #[error("{given:?} is not a percentage ({expected})")]
    Percent { given: String, expected: String },
}
