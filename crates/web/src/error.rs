//! How failures become responses: [`WebError`] for what went wrong inside a handler, rendered
//! as a short HTML page on pages and as `{"status":"error","message":...}` on the API. Details
//! go to the log; the client gets a message that says what failed, not internals.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

/// Errors of request handling, named after the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("store query failed: {0}")]
    QueryStore(#[from] lookout_store::StoreError),
    #[error("time series read failed: {0}")]
    FetchSeries(#[from] lookout_timeseries::TimeSeriesError),
    #[error("page rendering failed: {0}")]
    RenderPage(#[from] askama::Error),
    #[error("password check failed: {0}")]
    CheckPassword(#[from] crate::auth::AuthError),
    #[error("background task failed: {0}")]
    RunBlocking(#[from] tokio::task::JoinError),
    /// Redis (the session records' home where configured) failed or held a bad record.
    #[error("session store failed: {0}")]
    Sessions(String),
}

impl From<crate::sessions::SessionError> for WebError {
    fn from(e: crate::sessions::SessionError) -> Self {
        match e {
            crate::sessions::SessionError::Store(e) => WebError::QueryStore(e),
            other => WebError::Sessions(other.to_string()),
        }
    }
}

impl From<crate::sessions::SessionError> for ApiError {
    fn from(e: crate::sessions::SessionError) -> Self {
        WebError::from(e).into_api()
    }
}

impl WebError {
    /// Status and the message a client may see.
    fn public(&self) -> (StatusCode, &'static str) {
        match self {
            // An unreachable database is an outage of this instance's dependency: 503 lets a
            // load balancer and the user's retry go elsewhere.
            WebError::QueryStore(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable",
            ),
            WebError::FetchSeries(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the time series store is unavailable",
            ),
            WebError::RenderPage(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            ),
            WebError::CheckPassword(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the stored password hash is unusable",
            ),
            WebError::RunBlocking(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "an internal task failed")
            }
            WebError::Sessions(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the session store is unavailable",
            ),
        }
    }

    /// The error as a JSON API response.
    pub(crate) fn into_api(self) -> ApiError {
        tracing::error!(error = %self, "api request failed");
        let (status, message) = self.public();
        ApiError::new(status, message)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "page request failed");
        let (status, message) = self.public();
        error_page(status, message)
    }
}

/// A minimal HTML error page (no template, so it renders even when templates fail).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{code} - Lookout</title></head>\
         <body><h1>{code}</h1><p>{msg}</p><p><a href=\"/devices\">Devices</a></p></body></html>",
        code = status.as_u16(),
        msg = escape(message),
    );
    (status, Html(body)).into_response()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An API error: `{"status":"error","message":...}` with an HTTP status (LibreNMS's shape).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        e.into_api()
    }
}

impl From<lookout_store::StoreError> for ApiError {
    fn from(e: lookout_store::StoreError) -> Self {
        WebError::from(e).into_api()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({"status": "error", "message": self.message})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
