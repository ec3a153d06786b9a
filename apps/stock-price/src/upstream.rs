//! The optional upstream quote provider: a URL template with `{symbol}`
//! (e.g. `http://quotes.internal/quote/{symbol}`), set by
//! `STOCK_UPSTREAM_URL`. The upstream answers JSON `{"price": 12.3 | "12.30",
//! "name": "..."}` (name optional); 404 means an unknown symbol.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;

/// The most bytes read from an upstream answer.
pub const MAX_BODY: usize = 64 * 1024;

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

/// A configured upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    template: String,
    client: reqwest::Client,
}

impl Upstream {
    /// Checks the template and builds a client with a 5 s timeout.
    pub fn new(template: &str) -> Result<Self, UpstreamError> {
        if !template.starts_with("http://") || !template.contains("{symbol}") {
            return Err(UpstreamError::BadTemplate(template.to_string()));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| UpstreamError::Request(e.to_string()))?;
        Ok(Self {
            template: template.to_string(),
            client,
        })
    }

    /// The URL asked for `symbol`.
    pub fn url_for(&self, symbol: &str) -> String {
        let enc = utf8_percent_encode(symbol, NON_ALPHANUMERIC).to_string();
        self.template.replace("{symbol}", &enc)
    }

    /// Asks the upstream for `symbol`.
    pub async fn quote(&self, symbol: &str) -> Result<Quote, UpstreamError> {
        let mut resp = self
            .client
            .get(self.url_for(symbol))
            .send()
            .await
            .map_err(|e| UpstreamError::Request(e.to_string()))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(UpstreamError::NotFound);
        }
        if !resp.status().is_success() {
            return Err(UpstreamError::Request(format!("status {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| UpstreamError::Request(e.to_string()))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(UpstreamError::BadAnswer(format!(
                    "more than {MAX_BODY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        parse_quote(&body)
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
