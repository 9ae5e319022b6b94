//! The end of an HTTP request's record: the response body is counted as it streams, its
//! gRPC status read from the trailers, and the record logged and counted once the body has
//! ended — or, when the client went away first, with the `DC` flag.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::access_log::AccessLog;
use crate::body::{Body, BoxError};
use crate::record::Record;

/// A response body that logs `record` when it ends.
pub struct Tally {
    inner: Body,
    record: Option<Record>,
    log: AccessLog,
    bytes: u64,
}

impl Tally {
    /// Wraps `inner`; a gRPC status already in the response headers is taken from `headers`.
    pub fn new(inner: Body, mut record: Record, headers: &HeaderMap, log: AccessLog) -> Tally {
        if record.grpc {
            record.grpc_status = grpc_status(headers);
        }
        let mut t = Tally {
            inner,
            record: Some(record),
            log,
            bytes: 0,
        };
        if t.inner.is_end_stream() {
            t.done(false);
        }
        t
    }

    fn done(&mut self, disconnected: bool) {
        let Some(mut r) = self.record.take() else {
            return;
        };
        r.disconnected = disconnected;
        r.bytes_received = Some(self.bytes);
        if let Some(n) = r.request_body.take() {
            r.bytes_sent = Some(n.load(Ordering::Relaxed));
        }
        self.log.write(&r);
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl HttpBody for Tally {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.bytes += d.len() as u64;
                }
                if let (Some(t), Some(r)) = (frame.trailers_ref(), this.record.as_mut())
                    && r.grpc
                    && let Some(s) = grpc_status(t)
                {
                    r.grpc_status = Some(s);
                }
                if this.inner.is_end_stream() {
                    this.done(false);
                }
            }
            Poll::Ready(None) => this.done(false),
            // The upstream failed mid-body: the client gets a cut response.
            Poll::Ready(Some(Err(_))) => this.done(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let ended = self.inner.is_end_stream();
        self.done(!ended);
    }
}
