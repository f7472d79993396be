//! API errors and their HTTP form.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cpc_chain::SubmitError;
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable: `malformed`, `unauthorized`, `not_found`, `method_not_allowed`,
    /// `timeout`, `nonce`,
    /// `duplicate`, `too_large`, `invalid_signature`, `invalid`, `rate_limited`,
    /// `unavailable`, `internal`.
    pub code: &'static str,
    /// What went wrong and what to do about it.
    pub message: String,
}

/// An error returned by a handler, or by the server at start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be decoded (400).
    #[error("{0}")]
    Malformed(String),
    /// No or a wrong bearer token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Nothing there (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not served at this path (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request took too long (408).
    #[error("{0}")]
    Timeout(String),
    /// The nonce is used, conflicts or is too far ahead (409).
    #[error("{0}")]
    Nonce(String),
    /// The transaction is already pending or committed (409).
    #[error("{0}")]
    Duplicate(String),
    /// The body is too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// The signature does not verify (422).
    #[error("invalid signature")]
    Signature,
    /// The transaction cannot execute (422).
    #[error("{0}")]
    Invalid(String),
    /// The node is saturated (429).
    #[error("{0}")]
    RateLimited(String),
    /// The node cannot serve this now (503).
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the node (500).
    #[error("{0}")]
    Internal(String),
    /// The server cannot start with these settings.
    #[error("{0}")]
    Config(String),
}

impl ApiError {
    /// The status and code of the error.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ApiError::Nonce(_) => (StatusCode::CONFLICT, "nonce"),
            ApiError::Duplicate(_) => (StatusCode::CONFLICT, "duplicate"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::Signature => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_signature"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) | ApiError::Config(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.status_code().1,
            message: self.to_string(),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Duplicate(_) | SubmitError::Committed(_) => {
                ApiError::Duplicate(e.to_string())
            }
            SubmitError::Nonce(m) => ApiError::Nonce(m),
            SubmitError::Signature => ApiError::Signature,
            SubmitError::Invalid(m) => ApiError::Invalid(m),
            SubmitError::Full(m) => ApiError::RateLimited(m),
            SubmitError::TooLarge(_) => ApiError::TooLarge(e.to_string()),
            SubmitError::Unavailable => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl From<cpc_chain::ChainError> for ApiError {
    fn from(e: cpc_chain::ChainError) -> Self {
        match e {
            cpc_chain::ChainError::Poisoned => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_code();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        (status, Json(self.body())).into_response()
    }
}
