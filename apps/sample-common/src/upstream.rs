//! The optional upstream both stock-price and weather can ask instead of
//! their built-in data: a URL template with one placeholder (e.g.
//! `{symbol}`, `{city}`), a client with a 5 s timeout, 404 meaning "unknown",
//! and a bounded answer body. The apps parse the body and word the errors.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

/// The most bytes read from an upstream answer.
pub const MAX_BODY: usize = 64 * 1024;

/// Why an upstream answer could not be had; the apps turn these into their
/// own error wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The template lacks the placeholder or is not an http URL.
    BadTemplate(String),
    /// The upstream answered 404.
    NotFound,
    /// Connection, timeout or status failure.
    Request(String),
    /// The answer was too large (or, from the apps, not the expected JSON).
    BadAnswer(String),
}

/// A configured upstream: a checked template and its client.
#[derive(Debug, Clone)]
pub struct Fetcher {
    template: String,
    placeholder: &'static str,
    client: reqwest::Client,
}

impl Fetcher {
    /// Checks that `template` starts with `http://` and contains
    /// `placeholder`, and builds a client with a 5 s timeout.
    pub fn new(template: &str, placeholder: &'static str) -> Result<Self, FetchError> {
        if !template.starts_with("http://") || !template.contains(placeholder) {
            return Err(FetchError::BadTemplate(template.to_string()));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| FetchError::Request(e.to_string()))?;
        Ok(Self {
            template: template.to_string(),
            placeholder,
            client,
        })
    }

    /// The URL asked for `value` (percent-encoded into the placeholder).
    pub fn url_for(&self, value: &str) -> String {
        let enc = utf8_percent_encode(value, NON_ALPHANUMERIC).to_string();
        self.template.replace(self.placeholder, &enc)
    }

    /// GETs the URL for `value`; the body of a 2xx answer, at most
    /// [`MAX_BODY`] bytes.
    pub async fn fetch(&self, value: &str) -> Result<Vec<u8>, FetchError> {
        let mut resp = self
            .client
            .get(self.url_for(value))
            .send()
            .await
            .map_err(|e| FetchError::Request(e.to_string()))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(FetchError::NotFound);
        }
        if !resp.status().is_success() {
            return Err(FetchError::Request(format!("status {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Request(e.to_string()))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(FetchError::BadAnswer(format!("more than {MAX_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_checks_and_encoding() {
        assert!(Fetcher::new("http://x/{v}", "{v}").is_ok());
        assert!(matches!(
            Fetcher::new("http://x/v", "{v}"),
            Err(FetchError::BadTemplate(_))
        ));
        assert!(matches!(
            Fetcher::new("https://x/{v}", "{v}"),
            Err(FetchError::BadTemplate(_))
        ));
        let f = Fetcher::new("http://x/q?s={v}&f=1", "{v}").unwrap();
        assert_eq!(f.url_for("a b.c"), "http://x/q?s=a%20b%2Ec&f=1");
    }
}
