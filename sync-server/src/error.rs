//! [`ApiError`]: the one error type of the HTTP layer. Each carries an HTTP status, a stable machine code
//! (the contract with stations: see `docs/api.md`), a message for the user, and log detail kept apart from the
//! message. The response body is [`tessera_packet::wire::ErrorBody`] with the request id echoed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_packet::wire::ErrorBody;

use crate::store::StoreError;

tokio::task_local! {
    /// The id of the request being served (set by the request-id middleware).
    pub static REQUEST_ID: String;
}

/// The current request id, or `"-"` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// An API failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code.
    pub code: &'static str,
    /// Message shown to the caller.
    pub message: String,
    /// Detail for the server log only (may name internal causes; never personal data).
    pub detail: Option<String>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// Adds log-only detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401 with `code`.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403 with `code`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 `internal`: the caller sees a generic message; `detail` goes to the log.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; retry later and quote the request id if it persists",
        )
        .with_detail(detail)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound { what, id } => Self::not_found(format!("{what} {id} not found")),
            StoreError::Conflict { .. } => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            StoreError::Pool { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable; retry later",
            )
            .with_detail(e.to_string()),
            _ => Self::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = current_request_id();
        if self.status.is_server_error() {
            tracing::error!(code = self.code, status = %self.status, detail = ?self.detail, %request_id, "request failed");
        } else {
            tracing::info!(code = self.code, status = %self.status, detail = ?self.detail, %request_id, "request refused");
        }
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
            request_id,
        };
        (self.status, axum::Json(body)).into_response()
    }
}
