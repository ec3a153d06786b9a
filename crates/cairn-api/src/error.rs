//! The single error type of the client, so callers (notably the CLI) can tell an HTTP status
//! returned by the server apart from transport and decoding failures.

/// Everything that can go wrong while talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with a non-2xx status; `message` is its (trimmed) response body.
    #[error("Unexpected response code: {status} ({message})")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The body the server sent, which for Consul is a human-readable reason.
        message: String,
    },
    /// The configured agent address could not be turned into a base URL.
    #[error("invalid HTTP address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Connecting, sending or receiving failed.
    #[error("error talking to {url}: {}", root_cause(.source))]
    Transport {
        /// The URL that was requested.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The response body was larger than the client reads.
    #[error("response from {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL that was requested.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The server answered 2xx but the body was not what the endpoint promises.
    #[error("invalid response from {url}: {reason}")]
    Decode {
        /// The URL that was requested.
        url: String,
        /// What was wrong with the body.
        reason: String,
    },
    /// The TLS settings (CA file, client certificate) could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The token file could not be used.
    #[error("Error loading token file: {0}")]
    TokenFile(String),
    /// A request body could not be serialised.
    #[error("cannot encode request body: {0}")]
    Encode(#[source] serde_json::Error),
}

impl ApiError {
    /// The HTTP status, when the error is a non-2xx response.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the server answered 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// The innermost message of an error chain ("Connection refused" rather than reqwest's
/// generic "error sending request for url (...)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
