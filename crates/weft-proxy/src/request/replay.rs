//! A request body kept for a retry. A gRPC call always carries a body, so without a copy it
//! could never be retried: as Envoy buffers a request for its retries, the body is copied as
//! it streams to the first attempt, up to [`LIMIT`]. A later attempt is sent only when the
//! copy holds the whole body — it ended, without trailers, within the limit, before the answer
//! that is retried arrived. Otherwise the answer stands.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body as _, Frame, SizeHint};

use crate::body::{self, Body, BoxError};

/// The most of a request body kept for a retry.
pub(crate) const LIMIT: usize = 64 * 1024;

/// How a request's later attempts get its body.
pub(crate) enum Replay {
    /// The request has no body: later attempts are sent without one.
    Bodiless,
    /// The body is sent once (the policy sends no retry): none is kept.
    Once,
    /// Later attempts are sent this copy, once whole.
    Copied(Copy),
}

impl Replay {
    /// The body for the first attempt, and how later ones get theirs. `retries`: whether the
    /// policy may send the request again (a body is copied only then).
    pub(crate) fn new(body: Body, retries: bool) -> (Body, Replay) {
        if body.is_end_stream() {
            return (body, Replay::Bodiless);
        }
        if !retries {
            return (body, Replay::Once);
        }
        let copy = Copy::default();
        let tee = Tee {
            inner: body,
            copy: copy.clone(),
        };
        (Body::new(tee), Replay::Copied(copy))
    }

    /// The body for another attempt; None when the copy is not whole (the request cannot be
    /// sent again).
    pub(crate) fn again(&self) -> Option<Body> {
        match self {
            Replay::Bodiless => Some(body::empty()),
            Replay::Once => None,
            Replay::Copied(c) => c.whole().map(body::full),
        }
    }
}

/// What a [`Tee`] has seen of the body.
#[derive(Clone, Default)]
pub(crate) struct Copy(Arc<Mutex<Seen>>);

#[derive(Default)]
struct Seen {
    data: BytesMut,
    ended: bool,
    /// Past the limit, trailers, or an error: no replay.
    spoilt: bool,
}

impl Copy {
    /// The body, when it has been seen whole.
    fn whole(&self) -> Option<Bytes> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (seen.ended && !seen.spoilt).then(|| seen.data.clone().freeze())
    }

    fn update(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Passes a body on, copying it into a [`Copy`].
struct Tee {
    inner: Body,
    copy: Copy,
}

impl hyper::body::Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = self.inner.is_end_stream();
        match &polled {
            Poll::Ready(Some(Ok(frame))) => self.copy.update(|s| {
                match frame.data_ref() {
                    Some(d) if s.data.len() + d.len() <= LIMIT => s.data.extend_from_slice(d),
                    Some(_) => s.spoilt = true,
                    // gRPC requests have no trailers; a body with them is not replayed.
                    None => s.spoilt = true,
                }
                s.ended |= ended;
            }),
            Poll::Ready(Some(Err(_))) => self.copy.update(|s| s.spoilt = true),
            Poll::Ready(None) => self.copy.update(|s| s.ended = true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let ended = self.inner.is_end_stream();
        if ended {
            self.copy.update(|s| s.ended = true);
        }
        ended
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    /// A body of these frames (Err: a failed read), then its end.
    fn frames(list: Vec<Result<Frame<Bytes>, &'static str>>) -> Body {
        let items = list.into_iter().map(|f| f.map_err(BoxError::from));
        Body::new(StreamBody::new(futures_util::stream::iter(items)))
    }

    fn data(s: &'static str) -> Result<Frame<Bytes>, &'static str> {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    async fn read(b: Body) -> Result<Bytes, BoxError> {
        Ok(b.collect().await?.to_bytes())
    }

    #[tokio::test]
    async fn a_body_read_whole_is_sent_again_as_it_was() {
        let (first, replay) = Replay::new(frames(vec![data("\0\0\0\0\x02"), data("hi")]), true);
        assert!(replay.again().is_none(), "nothing read yet");
        assert_eq!(read(first).await.unwrap(), "\0\0\0\0\x02hi");
        let again = replay.again().expect("whole");
        assert_eq!(read(again).await.unwrap(), "\0\0\0\0\x02hi");
        assert_eq!(
            read(replay.again().unwrap()).await.unwrap(),
            "\0\0\0\0\x02hi"
        );
    }

    #[tokio::test]
    async fn a_body_partly_read_over_the_limit_with_trailers_or_failed_is_not_sent_again() {
        let big = "x".repeat(LIMIT);
        let big: &'static str = Box::leak(big.into_boxed_str());
        let trailers = Ok(Frame::trailers(http::HeaderMap::new()));
        // (frames, frames read)
        let cases = [
            (vec![data("a"), data("b")], 1),
            (vec![data(big), data("b")], 2),
            (vec![data("a"), trailers], 2),
            (vec![data("a"), Err("reset")], 2),
        ];
        for (list, n) in cases {
            let (mut first, replay) = Replay::new(frames(list), true);
            for _ in 0..n {
                let _ = first.frame().await;
            }
            assert!(replay.again().is_none(), "{n}");
        }
        let (mut first, replay) = Replay::new(frames(vec![data(big)]), true);
        while first.frame().await.is_some() {}
        assert!(replay.again().is_some(), "exactly the limit is kept");
    }

    #[tokio::test]
    async fn no_body_or_no_retry_keeps_nothing() {
        let (_, replay) = Replay::new(body::empty(), true);
        assert!(matches!(replay, Replay::Bodiless));
        assert_eq!(read(replay.again().unwrap()).await.unwrap(), "");
        let (first, replay) = Replay::new(body::full("hi"), false);
        assert!(matches!(replay, Replay::Once));
        assert!(replay.again().is_none());
        assert_eq!(read(first).await.unwrap(), "hi");
    }
}
