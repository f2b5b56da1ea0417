//! A request body that can be sent a second time: what the transport read of it is recorded
//! (up to [`MAX_REPLAY`]), and when the transport lets go of it, the recording and the unread
//! rest are handed back. A call refused with `use_dpop_nonce` is sent again this way, with
//! the nonce in a new proof: unary and server-streaming calls always, a client stream while
//! less than 64 KiB of it had been read.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::oneshot;
use tonic::Status;
use tonic::body::Body;

/// The most of a body kept for a replay.
pub(super) const MAX_REPLAY: usize = 64 * 1024;

/// How long to wait for the transport to let go of a refused call's body. It does as soon as
/// the server ends the stream (at once for a refusal); a client stream the server leaves
/// open is not replayed.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// The body as sent, for a second sending.
struct Recorded {
    frames: Vec<Bytes>,
    trailers: Option<http::HeaderMap>,
    /// What the transport had not read yet.
    rest: Option<Body>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Frames are recorded.
    Recording,
    /// The body ended; everything is recorded.
    Ended,
    /// Not replayable (too large, failed, or no longer wanted): nothing is kept.
    Off,
}

/// The body given to the transport: the original, its frames recorded.
pub(super) struct Recorder {
    inner: Option<Body>,
    frames: Vec<Bytes>,
    size: usize,
    trailers: Option<http::HeaderMap>,
    state: State,
    handoff: Option<oneshot::Sender<Recorded>>,
    discarded: Arc<AtomicBool>,
}

/// The caller's side of a [`Recorder`]: the body back for a replay, or nothing kept.
pub(super) struct Recording {
    handoff: oneshot::Receiver<Recorded>,
    discarded: Arc<AtomicBool>,
}

impl Recorder {
    /// `body` to send, and the handle that gets it back.
    pub(super) fn wrap(body: Body) -> (Body, Recording) {
        let (sender, receiver) = oneshot::channel();
        let discarded = Arc::new(AtomicBool::new(false));
        let recorder = Self {
            inner: Some(body),
            frames: Vec::new(),
            size: 0,
            trailers: None,
            state: State::Recording,
            handoff: Some(sender),
            discarded: discarded.clone(),
        };
        let recording = Recording {
            handoff: receiver,
            discarded,
        };
        (Body::new(recorder), recording)
    }

    fn stop(&mut self) {
        self.state = State::Off;
        self.frames = Vec::new();
        self.trailers = None;
        self.handoff = None;
    }
}

impl http_body::Body for Recorder {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if this.state == State::Recording && this.discarded.load(Ordering::Relaxed) {
            this.stop();
        }
        if this.state == State::Recording {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        this.size = this.size.saturating_add(data.len());
                        if this.size > MAX_REPLAY {
                            this.stop();
                        } else {
                            this.frames.push(data.clone());
                        }
                    } else if let Some(trailers) = frame.trailers_ref() {
                        this.trailers = Some(trailers.clone());
                    }
                }
                Poll::Ready(Some(Err(_))) => this.stop(),
                Poll::Ready(None) => this.state = State::Ended,
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let Some(handoff) = self.handoff.take() else {
            return;
        };
        if self.state == State::Off || self.discarded.load(Ordering::Relaxed) {
            return;
        }
        let rest = match self.state {
            State::Recording => self.inner.take(),
            _ => None,
        };
        let _ = handoff.send(Recorded {
            frames: std::mem::take(&mut self.frames),
            trailers: self.trailers.take(),
            rest,
        });
    }
}

impl Recording {
    /// The answer needs no second sending: stop recording, keep nothing.
    pub(super) fn discard(&self) {
        self.discarded.store(true, Ordering::Relaxed);
    }

    /// The body again, once the transport has let go of the first one; `None` when it is
    /// not replayable or not let go of in time.
    pub(super) async fn replay(self) -> Option<Body> {
        let recorded = tokio::time::timeout(RELEASE_WAIT, self.handoff)
            .await
            .ok()?
            .ok()?;
        Some(Body::new(Replay {
            frames: recorded.frames.into(),
            trailers: recorded.trailers,
            rest: recorded.rest,
        }))
    }
}

/// The recorded frames, then the unread rest, then the trailers.
struct Replay {
    frames: VecDeque<Bytes>,
    trailers: Option<http::HeaderMap>,
    rest: Option<Body>,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if let Some(data) = this.frames.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(rest) = this.rest.as_mut() {
            match Pin::new(rest).poll_frame(cx) {
                Poll::Ready(None) => this.rest = None,
                polled => return polled,
            }
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;

    use super::*;

    /// A body of these data frames.
    fn body(frames: &[&'static [u8]]) -> Body {
        struct Frames(VecDeque<Bytes>);
        impl http_body::Body for Frames {
            type Data = Bytes;
            type Error = Status;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
                Poll::Ready(self.0.pop_front().map(|data| Ok(Frame::data(data))))
            }
        }
        Body::new(Frames(
            frames.iter().map(|f| Bytes::from_static(f)).collect(),
        ))
    }

    async fn next(body: &mut Body) -> Option<Bytes> {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        frame.ok()?.into_data().ok()
    }

    async fn read_all(mut body: Body) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(data) = next(&mut body).await {
            out.extend_from_slice(&data);
        }
        out
    }

    #[tokio::test]
    async fn a_body_read_in_full_is_replayed() {
        let (sent, recording) = Recorder::wrap(body(&[b"one", b"two"]));
        assert_eq!(read_all(sent).await, b"onetwo");
        let again = recording.replay().await.expect("replayable");
        assert_eq!(read_all(again).await, b"onetwo");
    }

    #[tokio::test]
    async fn a_body_let_go_of_early_is_replayed_with_its_rest() {
        let (mut sent, recording) = Recorder::wrap(body(&[b"one", b"two", b"three"]));
        assert_eq!(next(&mut sent).await.as_deref(), Some(&b"one"[..]));
        drop(sent); // the transport stops early: the server answered
        let again = recording.replay().await.expect("replayable");
        assert_eq!(read_all(again).await, b"onetwothree");
    }

    #[tokio::test]
    async fn a_large_or_discarded_body_is_not_kept() {
        static BIG: [u8; MAX_REPLAY + 1] = [7; MAX_REPLAY + 1];
        let (sent, recording) = Recorder::wrap(body(&[&BIG]));
        assert_eq!(read_all(sent).await.len(), MAX_REPLAY + 1);
        assert!(recording.replay().await.is_none());

        let (sent, recording) = Recorder::wrap(body(&[b"one", b"two"]));
        recording.discard();
        assert_eq!(read_all(sent).await, b"onetwo");
        assert!(recording.replay().await.is_none());
    }
}
