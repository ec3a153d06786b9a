//! The optional upstream weather provider: a URL template with `{city}`
//! (e.g. `http://weather.internal/now?q={city}`), set by
//! `WEATHER_UPSTREAM_URL`. The upstream answers JSON `{"temp": <Celsius>,
//! "city": "...", "country": "..."}` (city and country optional); 404 means
//! an unknown city.

use sample_common::upstream::{FetchError, Fetcher};
use serde::Deserialize;

pub use sample_common::upstream::MAX_BODY;

/// Why an upstream reading could not be had.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The template has no `{city}` or is not an http URL.
    #[error("bad upstream URL template {0:?}: it must start with http:// and contain {{city}}")]
    BadTemplate(String),
    /// The upstream does not know the city (404).
    #[error("upstream does not know the city")]
    NotFound,
    /// Connection, timeout or status failure.
    #[error("upstream request failed: {0}")]
    Request(String),
    /// The answer was too large or not the expected JSON.
    #[error("upstream answer unusable: {0}")]
    BadAnswer(String),
}

/// A reading from the upstream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Reading {
    /// Degrees Celsius.
    pub temp: f64,
    /// The city's name, when given.
    pub city: Option<String>,
    /// The country code, when given.
    pub country: Option<String>,
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
            fetcher: Fetcher::new(template, "{city}")?,
        })
    }

    /// The URL asked for `city`.
    pub fn url_for(&self, city: &str) -> String {
        self.fetcher.url_for(city)
    }

    /// Asks the upstream for `city`.
    pub async fn reading(&self, city: &str) -> Result<Reading, UpstreamError> {
        parse_reading(&self.fetcher.fetch(city).await?)
    }
}

/// Parses the upstream's JSON answer.
pub fn parse_reading(body: &[u8]) -> Result<Reading, UpstreamError> {
    let r: Reading =
        serde_json::from_slice(body).map_err(|e| UpstreamError::BadAnswer(e.to_string()))?;
    if !(-100.0..=100.0).contains(&r.temp) {
        return Err(UpstreamError::BadAnswer(format!(
            "{} is not an earthly Celsius temperature",
            r.temp
        )));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_checks_and_encoding() {
        assert!(Upstream::new("http://x/w?q=city").is_err());
        let u = Upstream::new("http://x/w?q={city}").unwrap();
        assert_eq!(u.url_for("São Paulo"), "http://x/w?q=S%C3%A3o%20Paulo");
    }

    #[test]
    fn parses_and_rejects() {
        let r = parse_reading(br#"{"temp": 12.5, "city": "X", "country": "FR"}"#).unwrap();
        assert_eq!(r.temp, 12.5);
        assert_eq!(r.country.as_deref(), Some("FR"));
        assert!(parse_reading(br#"{"temp": 1000}"#).is_err());
        assert!(parse_reading(br#"{"city": "X"}"#).is_err());
        assert!(parse_reading(b"[]").is_err());
    }
}
