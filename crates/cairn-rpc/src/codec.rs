//! The codec seam: how a protocol's message bodies become bytes.
//!
//! The framing (see [`crate::frame`]) is fixed; what goes inside a message frame is chosen per
//! protocol through [`Codec`]. Two implementations:
//!
//! - [`PostcardCodec`]: compact and fast, the default for Cairn's own types. It is **not
//!   self-describing**: the bytes carry no field names or type tags, so decoding relies on the
//!   exact shape of the Rust type. Types whose `Deserialize` calls `deserialize_any`
//!   (`serde_json::Value`, `#[serde(untagged)]`, `#[serde(flatten)]`, internally tagged enums)
//!   cannot be decoded at all, and `#[serde(skip_serializing_if = ...)]` omits a field on the
//!   way out that the decoder still expects, which shifts every following field: the result is
//!   an error at best and silently wrong values at worst.
//! - [`JsonCodec`]: self-describing and tolerant of all of the above, larger and slower. Use it
//!   for protocols whose messages carry such types (for example state-machine commands that
//!   embed free-form JSON metadata).
//!
//! A protocol picks one codec for all of its messages ([`crate::Protocol::Codec`]); both ends
//! advertise it in the `content-type` header, so a mismatch is refused rather than misread.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encoding or decoding failed. The message says which codec and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec}: {message}")]
pub struct CodecError {
    /// The codec's [`Codec::NAME`].
    pub codec: &'static str,
    /// What went wrong, in words.
    pub message: String,
}

/// Turns one message into bytes and back. Implementations are stateless.
pub trait Codec: Send + Sync + 'static {
    /// Short name, sent as `application/cairn-rpc+NAME` in the `content-type` header.
    const NAME: &'static str;

    /// Serialise `value`.
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError>;

    /// Deserialise a whole message; trailing bytes are an error.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError>;
}

/// [postcard](https://docs.rs/postcard): compact, not self-describing (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct PostcardCodec;

impl Codec for PostcardCodec {
    const NAME: &'static str = "postcard";

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
        postcard::to_allocvec(value).map_err(|e| postcard_error("encode", e))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        let (value, rest) =
            postcard::take_from_bytes(bytes).map_err(|e| postcard_error("decode", e))?;
        if !rest.is_empty() {
            return Err(CodecError {
                codec: Self::NAME,
                message: format!(
                    "decode: {} trailing bytes after the message (the sender's type does not \
                     match the receiver's)",
                    rest.len()
                ),
            });
        }
        Ok(value)
    }
}

fn postcard_error(op: &str, e: postcard::Error) -> CodecError {
    let message = match e {
        postcard::Error::WontImplement => format!(
            "{op}: this type needs a self-describing format (it uses deserialize_any, as \
             serde_json::Value, #[serde(untagged)] and #[serde(flatten)] do); use JsonCodec for \
             this protocol"
        ),
        other => format!("{op}: {other}"),
    };
    CodecError {
        codec: PostcardCodec::NAME,
        message,
    }
}

/// JSON through `serde_json`: self-describing, accepts every serde feature.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    const NAME: &'static str = "json";

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError {
            codec: Self::NAME,
            message: format!("encode: {e}"),
        })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError {
            codec: Self::NAME,
            message: format!("decode: {e}"),
        })
    }
}

/// Encode then decode `value` with `C`: a one-line check for a protocol's test suite that its
/// message types survive the chosen codec (catches the postcard trap before production does).
pub fn round_trip<C: Codec, T: Serialize + DeserializeOwned>(value: &T) -> Result<T, CodecError> {
    C::decode(&C::encode(value)?)
}
