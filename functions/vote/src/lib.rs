//! GET and PATCH /api/vote: votes on the messages of the caller's chats.

use http::Response;
use lambda_http::{Body, Request};
use shared::AppState;
use shared::http::{ApiError, ApiResult};

/// Serves one request.
pub async fn handle(_request: Request, _state: AppState) -> ApiResult<Response<Body>> {
    Err(ApiError::method_not_allowed("GET"))
}
