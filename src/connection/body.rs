//! Request and response bodies as the connection layer sees them: a request body must
//! arrive whole within the idle timeout of its head, and the end of a response tells the
//! connection it is idle again.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use super::io::Shared;

/// A request body that fails with [`BodyTimeout`] if it has not all arrived by its
/// deadline, so a client dribbling a body cannot hold a handler (and its connection).
pub(crate) struct TimedBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    done: bool,
}

impl<B> TimedBody<B> {
    /// `inner`, due within `limit` from now.
    pub(crate) fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            done: false,
        }
    }
}

/// A request body did not arrive in time (`--idle-connection-timeout`).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub(crate) struct BodyTimeout;

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame.map_err(Into::into))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    Poll::Ready(Some(Err(Box::new(BodyTimeout))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` (or anything it wraps) is a [`BodyTimeout`].
pub(crate) fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<BodyTimeout>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Marks one request of a connection as finished when dropped: with the response body
/// once hyper has sent it, or with the request if it was abandoned.
pub(crate) struct Finished(pub(crate) Arc<Shared>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finish_request();
    }
}

/// A response body that marks its request finished when it is dropped.
pub(crate) struct ResponseEnd<B> {
    inner: B,
    _finished: Finished,
}

impl<B> ResponseEnd<B> {
    pub(crate) fn new(inner: B, finished: Finished) -> Self {
        Self {
            inner,
            _finished: finished,
        }
    }
}

impl<B: Body + Unpin> Body for ResponseEnd<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
