//! Moving frames through HTTP/2 stream bodies with flow control respected in both directions:
//! the sender waits for window before each chunk (so a slow reader slows the writer instead of
//! growing a buffer), the receiver returns window only for bytes it has taken.

use bytes::Bytes;
use futures::future::poll_fn;
use h2::{Reason, RecvStream, SendStream};

use crate::frame::{FrameDecoder, FrameError, FrameKind};

/// Sends `data`, chunked to the window the peer grants; `eos` ends the stream with the last
/// chunk. Fails if the stream is reset or the connection breaks.
pub(crate) async fn send_all(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    eos: bool,
) -> Result<(), h2::Error> {
    if data.is_empty() {
        return stream.send_data(data, eos);
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = loop {
            let cap = stream.capacity();
            if cap > 0 {
                break cap;
            }
            match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                None => return Err(h2::Error::from(Reason::STREAM_CLOSED)),
            }
        };
        let chunk = data.split_to(granted.min(data.len()));
        stream.send_data(chunk, eos && data.is_empty())?;
    }
    Ok(())
}

/// Why reading a body failed.
#[derive(Debug)]
pub(crate) enum RecvError {
    H2(h2::Error),
    Frame(FrameError),
}

/// The next whole frame of `body`; `Ok(None)` at a clean end of stream.
pub(crate) async fn next_frame(
    body: &mut RecvStream,
    decoder: &mut FrameDecoder,
) -> Result<Option<(FrameKind, Bytes)>, RecvError> {
    loop {
        if let Some(frame) = decoder.next_frame().map_err(RecvError::Frame)? {
            return Ok(Some(frame));
        }
        match body.data().await {
            Some(Ok(chunk)) => {
                decoder.push(&chunk);
                // Window is returned once the bytes are in the decoder; the decoder itself holds
                // at most one frame (bounded by its limit) because callers only ask for the next
                // frame when they want it.
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            Some(Err(e)) => return Err(RecvError::H2(e)),
            None => {
                decoder.finish().map_err(RecvError::Frame)?;
                return Ok(None);
            }
        }
    }
}
