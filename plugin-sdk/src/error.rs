//! The error every plugin call reports, with constructors and conversions.

pub use crate::bindings::switchyard::plugin::types::Error;

/// `Result` with the plugin [`Error`] as its default error type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// The input is malformed or breaks the schema.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// The named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// A capability was not granted, or the caller may not do this.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::Denied(message.into())
    }

    /// A dependency is down; retrying may help.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into())
    }

    /// Anything else.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidInput(m)
            | Self::NotFound(m)
            | Self::Denied(m)
            | Self::Unavailable(m)
            | Self::Failed(m) => m,
        }
    }

    /// The kind as written in WIT: `invalid-input`, `not-found`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid-input",
            Self::NotFound(_) => "not-found",
            Self::Denied(_) => "denied",
            Self::Unavailable(_) => "unavailable",
            Self::Failed(_) => "failed",
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Failed(format!("JSON: {e}"))
    }
}
