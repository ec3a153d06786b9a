//! Errors per layer: the source of truth (Docker, the task runner) and the registry (the
//! agent). Both are retried by the runtime, so they carry enough to log a clear line.

/// Reading what runs failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The container engine could not be reached or answered with an error.
    #[error("container engine at {endpoint}: {message}")]
    Engine { endpoint: String, message: String },
    /// The source was configured wrongly (bad `DOCKER_HOST`, unreadable task file).
    #[error("{0}")]
    Config(String),
}

/// Talking to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The agent could not be reached, or answered with an error.
    #[error("agent: {0}")]
    Api(#[from] cairn_api::ApiError),
    /// The agent answered, but not with what was expected.
    #[error("agent: {0}")]
    Invalid(String),
}

impl RegistryError {
    /// Whether retrying the same request later can help (a 4xx answer will not change).
    pub fn is_permanent(&self) -> bool {
        match self {
            RegistryError::Api(e) => e
                .status()
                .is_some_and(|s| (400..500).contains(&s) && s != 429),
            RegistryError::Invalid(_) => false,
        }
    }
}
