//! Fault injection: a rule's `Fault` delays and aborts a share of its requests before they are
//! forwarded, as Envoy's fault filter does (flags `DI` for a delay, `FI` for an abort).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use weft_core::resources::fault::FaultSpec;

use crate::body::{self, Body};
use crate::record::Record;

/// The stage an injected abort is logged with (`weft-error`, `response_flags` FI).
pub const ABORT_STAGE: &str = "fault-abort";

/// Waits out the delay when it falls on this request, then answers with the abort when that
/// does; None: forward the request.
pub async fn inject(
    f: &FaultSpec,
    grpc: bool,
    record: &mut Record,
    rng: &mut fastrand::Rng,
) -> Option<Response<Body>> {
    if let Some(d) = &f.delay
        && hit(rng, d.percentage)
    {
        record.fault_delayed = true;
        tokio::time::sleep(d.fixed_delay.as_std()).await;
    }
    let a = f.abort.as_ref().filter(|a| hit(rng, a.percentage))?;
    record.error = Some(ABORT_STAGE);
    let mut res = match (a.grpc_status, a.http_status) {
        // A gRPC error is a trailers-only response: 200 with the status in the headers.
        (Some(code), _) if grpc => {
            let mut res = Response::new(body::empty());
            let h = res.headers_mut();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert("grpc-status", HeaderValue::from(code));
            h.insert(
                "grpc-message",
                HeaderValue::from_static("fault filter abort"),
            );
            res
        }
        (Some(_), _) => {
            let mut res = Response::new(body::full(Bytes::from_static(b"fault filter abort\n")));
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            res
        }
        (None, status) => {
            let mut res = Response::new(body::full(Bytes::from_static(b"fault filter abort\n")));
            *res.status_mut() = status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            res
        }
    };
    res.headers_mut().insert(
        crate::error::ERROR_HEADER,
        HeaderValue::from_static(ABORT_STAGE),
    );
    Some(res)
}

/// Whether a request falls in `percentage` (0–100) of them.
fn hit(rng: &mut fastrand::Rng, percentage: f64) -> bool {
    percentage >= 100.0 || rng.f64() * 100.0 < percentage
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::resources::fault::{FaultAbort, FaultDelay};

    fn abort(http: Option<u16>, grpc: Option<u32>, percentage: f64) -> FaultSpec {
        FaultSpec {
            delay: None,
            abort: Some(FaultAbort {
                http_status: http,
                grpc_status: grpc,
                percentage,
            }),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_holds_the_request_and_an_abort_answers_it() {
        let mut rng = fastrand::Rng::with_seed(7);
        let spec = FaultSpec {
            delay: Some(FaultDelay {
                fixed_delay: "2s".parse().unwrap(),
                percentage: 100.0,
            }),
            ..abort(Some(503), None, 100.0)
        };
        let mut r = Record::new("outbound");
        let start = tokio::time::Instant::now();
        let res = inject(&spec, false, &mut r, &mut rng)
            .await
            .expect("aborted");
        assert_eq!(start.elapsed(), std::time::Duration::from_secs(2));
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[crate::error::ERROR_HEADER], "fault-abort");
        assert!(r.fault_delayed);
        assert_eq!(
            crate::metrics::flags::of(&Record {
                status: Some(503),
                ..r
            }),
            "DI,FI"
        );
    }

    #[tokio::test]
    async fn a_grpc_abort_is_a_grpc_status_and_shares_hold_roughly() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut r = Record::new("outbound");
        let res = inject(&abort(None, Some(14), 100.0), true, &mut r, &mut rng)
            .await
            .unwrap();
        assert_eq!(
            (res.status().as_u16(), &res.headers()["grpc-status"]),
            (200, &HeaderValue::from(14u32))
        );
        let spec = abort(Some(500), None, 10.0);
        let mut aborted = 0;
        for _ in 0..2000 {
            if inject(&spec, false, &mut Record::new("outbound"), &mut rng)
                .await
                .is_some()
            {
                aborted += 1;
            }
        }
        assert!((120..=280).contains(&aborted), "{aborted} of 2000 at 10%");
        assert!(
            inject(&abort(Some(500), None, 0.0), false, &mut r, &mut rng)
                .await
                .is_none()
        );
    }
}
