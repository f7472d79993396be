//! Errors of the accelerator layer.

use crate::backend::BackendKind;

/// What went wrong in a backend or in the dispatcher.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccelError {
    /// The backend cannot run here (no device, no driver, not built in).
    #[error("backend {kind} is unavailable: {reason}")]
    Unavailable {
        /// Which backend.
        kind: BackendKind,
        /// Why, in words an operator can act on.
        reason: String,
    },
    /// The device failed while running an operation.
    #[error("backend {kind} failed: {message}")]
    Device {
        /// Which backend.
        kind: BackendKind,
        /// The device's own description of the failure.
        message: String,
    },
    /// The backend answered with the wrong number of results.
    #[error("backend {kind} returned {got} results for {expected} inputs")]
    BadAnswer {
        /// Which backend.
        kind: BackendKind,
        /// How many results were expected.
        expected: usize,
        /// How many came back.
        got: usize,
    },
    /// The batch exceeds what the backend accepts in one call.
    #[error("batch of {len} exceeds the {kind} limit of {max}")]
    BatchTooLarge {
        /// Which backend.
        kind: BackendKind,
        /// The batch length.
        len: usize,
        /// The backend's limit.
        max: usize,
    },
    /// A configuration value is invalid.
    #[error("invalid accelerator config: {0}")]
    Config(String),
}
