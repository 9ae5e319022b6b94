//! The body type passed through the proxy: streamed, never buffered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
}

pub fn stream(incoming: hyper::body::Incoming) -> Body {
    incoming.map_err(|e| Box::new(e) as BoxError).boxed()
}

/// [`stream`], adding the length of each data frame to `bytes` (a request's size, for its
/// record).
pub fn counted(incoming: hyper::body::Incoming, bytes: Arc<AtomicU64>) -> Body {
    incoming
        .map_frame(move |f| {
            if let Some(d) = f.data_ref() {
                bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
            f
        })
        .map_err(|e| Box::new(e) as BoxError)
        .boxed()
}
