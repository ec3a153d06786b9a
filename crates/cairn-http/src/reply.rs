//! Responses: JSON bodies with Consul's headers, and plain-text errors with the status
//! code Consul uses.

use axum::http::{HeaderValue, StatusCode};
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

fn add_read_headers(resp: &mut Response, meta: &ReadMeta) {
    let h = resp.headers_mut();
    h.insert("x-consul-index", HeaderValue::from(meta.index.max(1)));
    let known = meta.contact.known_leader;
    h.insert(
        "x-consul-knownleader",
        HeaderValue::from_static(if known { "true" } else { "false" }),
    );
    h.insert(
        "x-consul-lastcontact",
        HeaderValue::from(meta.contact.last_contact_ms),
    );
    h.insert(
        "x-consul-effective-consistency",
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
        Ok(b) => ([("content-type", "application/json")], b).into_response(),
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
    let mut r = (status, [("content-type", content_type)], body).into_response();
    add_read_headers(&mut r, meta);
    r
}
