//! Responses: JSON bodies with Consul's headers, and plain-text errors with the status
//! code Consul uses.

use axum::body::Body;
use axum::http::header::{HeaderName, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::backend::LeaderContact;

/// An error answered as `status` with a plain-text message, as Consul does.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, m)
    }

    /// Replaces the body of `resp` with this error, keeping its headers.
    pub fn into_response_with_headers(self, resp: Response) -> Response {
        let (mut parts, _) = resp.into_parts();
        let new = self.into_response();
        parts.status = new.status();
        parts.headers.insert(
            "content-type",
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Response::from_parts(parts, new.into_body())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut msg = self.message;
        if !msg.ends_with('\n') {
            msg.push('\n');
        }
        (
            self.status,
            [("content-type", "text/plain; charset=utf-8")],
            msg,
        )
            .into_response()
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

/// Consistency mode a read was served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Leader,
    Stale,
    Consistent,
}

impl Consistency {
    fn as_str(self) -> &'static str {
        match self {
            Consistency::Leader => "leader",
            Consistency::Stale => "stale",
            Consistency::Consistent => "consistent",
        }
    }
}

/// Metadata of a read: the blocking index and the Raft facts for the headers.
pub struct ReadMeta {
    pub index: u64,
    pub contact: LeaderContact,
    pub consistency: Consistency,
}

static X_CONSUL_INDEX: HeaderName = HeaderName::from_static("x-consul-index");
static X_CONSUL_KNOWNLEADER: HeaderName = HeaderName::from_static("x-consul-knownleader");
static X_CONSUL_LASTCONTACT: HeaderName = HeaderName::from_static("x-consul-lastcontact");
static X_CONSUL_EFFECTIVE_CONSISTENCY: HeaderName =
    HeaderName::from_static("x-consul-effective-consistency");

/// Headers a response has room for from the start: a read's content type and four
/// read headers, the length added on the way out and the few the middleware adds, so
/// that no insert makes the map grow (a rehash on every request otherwise).
const HEADER_ROOM: usize = 12;

/// A response with `status`, `content_type` and `body`.
fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut headers = HeaderMap::with_capacity(HEADER_ROOM);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

fn add_read_headers(resp: &mut Response, meta: &ReadMeta) {
    let h = resp.headers_mut();
    h.insert(&X_CONSUL_INDEX, HeaderValue::from(meta.index.max(1)));
    let known = meta.contact.known_leader;
    h.insert(
        &X_CONSUL_KNOWNLEADER,
        HeaderValue::from_static(if known { "true" } else { "false" }),
    );
    h.insert(
        &X_CONSUL_LASTCONTACT,
        HeaderValue::from(meta.contact.last_contact_ms),
    );
    h.insert(
        &X_CONSUL_EFFECTIVE_CONSISTENCY,
        HeaderValue::from_static(meta.consistency.as_str()),
    );
}

/// Serialises `body` as JSON (pretty with `?pretty`).
pub fn json<T: Serialize>(body: &T, pretty: bool) -> Response {
    let bytes = if pretty {
        serde_json::to_vec_pretty(body)
    } else {
        serde_json::to_vec(body)
    };
    match bytes {
        Ok(b) => response(StatusCode::OK, "application/json", b),
        Err(e) => HttpError::internal(format!("encoding response: {e}")).into_response(),
    }
}

/// A JSON read response with the blocking-query headers.
pub fn json_read<T: Serialize>(body: &T, pretty: bool, meta: &ReadMeta) -> Response {
    let mut r = json(body, pretty);
    add_read_headers(&mut r, meta);
    r
}

/// A read response with a given status and body (e.g. a 404 for a missing KV key).
pub fn status_read(
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
    meta: &ReadMeta,
) -> Response {
    let mut r = response(status, content_type, body);
    add_read_headers(&mut r, meta);
    r
}
