//! Logging set-up.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::TryInitError;

use crate::cli::LogFormat;

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The level is not valid EnvFilter syntax.
    #[error("invalid log level {level:?}")]
    Level {
        /// The rejected level.
        level: String,
        /// Why it was rejected.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("cannot install the log subscriber")]
    Init(#[from] TryInitError),
}

/// Installs the global log subscriber writing to stderr in `format`, filtered by `level`.
pub fn init(format: LogFormat, level: &str) -> Result<(), LoggingError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = EnvFilter::try_new(level).map_err(|source| LoggingError::Level {
        level: level.to_owned(),
        source,
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
    }
    Ok(())
}
