//! Error answers: `application/problem+json` (RFC 9457) with a `type` ending in one of
//! the kinds of interface §6, and a `detail` that names the problem.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use semel::limits::BUSY_RETRY_AFTER_SECS;
use serde::Serialize;

/// Where every problem type lives; a `type` is this and its kind.
pub const TYPE_BASE: &str = "urn:semel:problem:";

/// The kinds of problem of interface §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadInput,
    Conflict,
    NotFound,
    TooLarge,
    Busy,
    Unauthorized,
    Reverted,
    HostFailure,
    /// The store cannot be reached (`host-failure` with 503 and `Retry-After`).
    Unavailable,
    Timeout,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::BadInput => "bad-input",
            Kind::Conflict => "conflict",
            Kind::NotFound => "not-found",
            Kind::TooLarge => "too-large",
            Kind::Unauthorized => "unauthorized",
            Kind::Reverted => "reverted",
            Kind::HostFailure | Kind::Unavailable => "host-failure",
            // A request that ran past its time: 408, and of §6's kinds `busy` (retry
            // later). The store is untouched by the answer (a queued transaction still
            // runs once: its retry gets the receipt).
            Kind::Busy | Kind::Timeout => "busy",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Kind::BadInput => StatusCode::BAD_REQUEST,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Reverted => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::HostFailure => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Timeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::BadInput => "bad input: nothing was recorded",
            Kind::Conflict => "transaction id conflict: nothing changed",
            Kind::NotFound => "not found",
            Kind::TooLarge => "request too large: nothing was recorded",
            Kind::Busy => "the server is busy: retry later",
            Kind::Unauthorized => "unauthorized: nothing was recorded",
            Kind::Reverted => "the query reverted",
            Kind::HostFailure => "host or storage failure",
            Kind::Unavailable => {
                "the store cannot be reached: retry later (a retry of the same id runs at most once)"
            }
            Kind::Timeout => "the request took too long: retry later",
        }
    }
}

/// A problem answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:semel:problem:` and one of `bad-input`, `conflict`, `not-found`,
    /// `too-large`, `busy`, `unauthorized`, `reverted`, `host-failure`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What kind of problem, for people.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What exactly went wrong.
    pub detail: String,
}

impl Problem {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_BASE}{}", kind.name()),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: detail.into(),
        }
    }

    pub fn bad_input(detail: impl Into<String>) -> Self {
        Self::new(Kind::BadInput, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Answers that ask for a retry say when.
        let busy = matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT
        );
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if busy {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(BUSY_RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// Turns the bare error answers of the layers below the handlers (a body over the
/// limit, a timeout, an unknown path or method) into problems, so that every error a
/// client sees is problem+json.
pub async fn problems_everywhere(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return response;
    }
    let (kind, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            Kind::TooLarge,
            format!(
                "the body is larger than HTTP_BODY_BYTES_MAX ({} bytes)",
                semel::limits::HTTP_BODY_BYTES_MAX
            ),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            Kind::Timeout,
            format!(
                "the request took longer than HTTP_REQUEST_MILLIS_MAX ({} ms by default); a \
                 transaction it queued still runs once: retry its id for the receipt",
                semel::limits::HTTP_REQUEST_MILLIS_MAX
            ),
        ),
        StatusCode::NOT_FOUND => (Kind::NotFound, "no such endpoint".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            Kind::BadInput,
            "this endpoint does not take that method".to_owned(),
        ),
        s if s.is_server_error() => (Kind::HostFailure, format!("the server failed ({s})")),
        s => (Kind::BadInput, format!("the request was refused ({s})")),
    };
    let mut problem = Problem::new(kind, detail);
    problem.status = status.as_u16();
    let mut out = problem.into_response();
    // Headers the lower layer set that still apply (Allow on a 405).
    if let Some(allow) = response.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
