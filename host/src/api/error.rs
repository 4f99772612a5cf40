//! The error body every API failure uses: `{"error": {"code", "message", "details"}}`,
//! and the mapping from service errors and warp rejections to it.

use crate::auth::AuthError;
use crate::plugins::PluginsError;
use crate::runtime::{ErrorKind, PluginError};
use crate::store::StoreError;
use crate::tools::CallError;
use serde::Serialize;
use warp::http::StatusCode;

/// An API failure: status, machine-readable code, human message, optional details.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `not_found`.
    pub code: &'static str,
    /// What went wrong and what to do next.
    pub message: String,
    /// Extra facts.
    pub details: Option<serde_json::Value>,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl warp::reject::Reject for ApiError {}

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The fields of an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra facts (validation problems, denied capabilities…).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// With details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 500 without leaking internals (they are logged).
    pub fn internal(what: &str, e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{what} failed; see the server log"),
        )
    }

    /// The response.
    pub fn into_response(self) -> warp::reply::Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(v) = seconds.to_string().parse()
        {
            response.headers_mut().insert("retry-after", v);
        }
        if self.status == StatusCode::UNAUTHORIZED
            && let Ok(v) = "Bearer realm=\"switchyard\"".parse()
        {
            response.headers_mut().insert("www-authenticate", v);
        }
        response
    }
}

use warp::Reply;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("no such resource"),
            StoreError::Conflict(what) => Self::conflict(format!("{what} already exists")),
            other => Self::internal("database access", &other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => Self::unauthenticated(m),
            AuthError::RateLimited(s) => {
                let mut err =
                    Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string());
                err.retry_after = Some(s);
                err
            }
            AuthError::Invalid(m) => Self::bad_request(m),
            AuthError::Conflict(m) => Self::conflict(m),
            AuthError::WrongPassword => {
                Self::new(StatusCode::FORBIDDEN, "wrong_password", e.to_string())
            }
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<PluginsError> for ApiError {
    fn from(e: PluginsError) -> Self {
        let message = e.to_string();
        match e {
            PluginsError::NotInstalled(_) => Self::not_found(message),
            PluginsError::Disabled(_) => {
                Self::new(StatusCode::CONFLICT, "plugin_disabled", message)
            }
            // The same answer whoever holds the name: it must not reveal another
            // user's private plugin.
            PluginsError::Owned(_) => Self::new(StatusCode::CONFLICT, "name_taken", message),
            PluginsError::NotReady(_) => {
                Self::new(StatusCode::CONFLICT, "plugin_not_ready", message)
            }
            PluginsError::NoComponent(_) => Self::not_found(message),
            PluginsError::Config(_) => Self::bad_request(message),
            PluginsError::UnknownKey(_) => Self::not_found(message),
            PluginsError::NotRequested(_) => {
                Self::new(StatusCode::CONFLICT, "not_requested", message)
            }
            PluginsError::Package(_) | PluginsError::Load(_) | PluginsError::Invalid(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_plugin", message)
            }
            PluginsError::Plugin(p) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_plugin",
                p.to_string(),
            ),
            PluginsError::Registry(r) => Self::internal("plugin registry", &r),
            PluginsError::Store(s) => s.into(),
        }
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        let (status, code) = match e.kind {
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "invalid_arguments"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Denied => (StatusCode::FORBIDDEN, "capability_denied"),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "tool_unavailable"),
            ErrorKind::Failed => (StatusCode::UNPROCESSABLE_ENTITY, "tool_failed"),
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "tool_timeout"),
            ErrorKind::Busy => (StatusCode::SERVICE_UNAVAILABLE, "plugin_busy"),
            _ => (StatusCode::BAD_GATEWAY, "plugin_crashed"),
        };
        let details = serde_json::json!({ "kind": e.kind.as_str(), "denied": e.denied });
        Self::new(status, code, e.message).details(details)
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Plugin(p) => p.into(),
            CallError::Tool(t) => t.into(),
        }
    }
}

/// Turn any rejection into the JSON error body with the right status. A request
/// rejected by several routes reports the most specific reason: our own errors
/// first, then body and header problems, then a wrong method, then no route.
pub async fn recover(
    rejection: warp::Rejection,
) -> Result<warp::reply::Response, std::convert::Infallible> {
    let error = if let Some(e) = rejection.find::<ApiError>() {
        ApiError {
            status: e.status,
            code: e.code,
            message: e.message.clone(),
            details: e.details.clone(),
            retry_after: e.retry_after,
        }
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than allowed",
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "send a Content-Length header",
        )
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "unsupported Content-Type",
        )
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request(format!("invalid query string: {e}"))
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::bad_request(e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        ApiError::bad_request(e.to_string())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    } else if rejection.is_not_found() {
        ApiError::not_found("no such route; see /api/v1/openapi.json")
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        ApiError::bad_request("the request could not be understood")
    };
    Ok(error.into_response())
}
