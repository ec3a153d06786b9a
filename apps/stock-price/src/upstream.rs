//! The optional upstream quote provider: a URL template with `{symbol}`
//! (e.g. `http://quotes.internal/quote/{symbol}`), set by
//! `STOCK_UPSTREAM_URL`. The upstream answers JSON `{"price": 12.3 | "12.30",
//! "name": "..."}` (name optional); 404 means an unknown symbol.

use sample_common::upstream::{FetchError, Fetcher};
use serde::Deserialize;

pub use sample_common::upstream::MAX_BODY;

/// Why an upstream quote could not be had.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The template has no `{symbol}` or is not an http URL.
    #[error("bad upstream URL template {0:?}: it must start with http:// and contain {{symbol}}")]
    BadTemplate(String),
    /// The upstream does not know the symbol (404).
    #[error("upstream does not know the symbol")]
    NotFound,
    /// Connection, timeout or status failure.
    #[error("upstream request failed: {0}")]
    Request(String),
    /// The answer was too large or not the expected JSON.
    #[error("upstream answer unusable: {0}")]
    BadAnswer(String),
}

/// A quote from the upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// The company name, when the upstream gave one.
    pub name: Option<String>,
    /// The price in cents.
    pub cents: u64,
}

#[derive(Deserialize)]
struct Wire {
    name: Option<String>,
    price: serde_json::Value,
}

impl From<FetchError> for UpstreamError {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::BadTemplate(t) => UpstreamError::BadTemplate(t),
            FetchError::NotFound => UpstreamError::NotFound,
            FetchError::Request(m) => UpstreamError::Request(m),
            FetchError::BadAnswer(m) => UpstreamError::BadAnswer(m),
        }
    }
}

/// A configured upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    fetcher: Fetcher,
}

impl Upstream {
    /// Checks the template and builds a client with a 5 s timeout.
    pub fn new(template: &str) -> Result<Self, UpstreamError> {
        Ok(Self {
            fetcher: Fetcher::new(template, "{symbol}")?,
        })
    }

    /// The URL asked for `symbol`.
    pub fn url_for(&self, symbol: &str) -> String {
        self.fetcher.url_for(symbol)
    }

    /// Asks the upstream for `symbol`.
    pub async fn quote(&self, symbol: &str) -> Result<Quote, UpstreamError> {
        parse_quote(&self.fetcher.fetch(symbol).await?)
    }
}

/// Parses the upstream's JSON answer.
pub fn parse_quote(body: &[u8]) -> Result<Quote, UpstreamError> {
    let wire: Wire =
        serde_json::from_slice(body).map_err(|e| UpstreamError::BadAnswer(e.to_string()))?;
    let price = match &wire.price {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|p| p.is_finite() && *p >= 0.0 && *p < 1e12)
    .ok_or_else(|| UpstreamError::BadAnswer(format!("price {} is not a price", wire.price)))?;
    Ok(Quote {
        name: wire.name.filter(|n| !n.is_empty()),
        cents: (price * 100.0).round() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_must_be_http_with_placeholder() {
        assert!(Upstream::new("http://x/{symbol}").is_ok());
        assert!(matches!(
            Upstream::new("http://x/quote"),
            Err(UpstreamError::BadTemplate(_))
        ));
        assert!(matches!(
            Upstream::new("ftp://x/{symbol}"),
            Err(UpstreamError::BadTemplate(_))
        ));
    }

    #[test]
    fn url_substitutes_and_encodes() {
        let u = Upstream::new("http://x/q?s={symbol}&f=json").unwrap();
        assert_eq!(u.url_for("BRK.B"), "http://x/q?s=BRK%2EB&f=json");
    }

    #[test]
    fn parses_number_and_string_prices() {
        let q = parse_quote(br#"{"price": 12.345, "name": "X"}"#).unwrap();
        assert_eq!(q.cents, 1235);
        assert_eq!(q.name.as_deref(), Some("X"));
        let q = parse_quote(br#"{"price": "7.5"}"#).unwrap();
        assert_eq!((q.cents, q.name), (750, None));
        assert!(parse_quote(br#"{"price": "abc"}"#).is_err());
        assert!(parse_quote(br#"{"price": -1}"#).is_err());
        assert!(parse_quote(b"not json").is_err());
    }
}
