//! POST /api/auth/guest, /register, /login and GET /api/auth/session: sign-in as the upstream chatbot has it, answering signed session tokens.

use http::Response;
use lambda_http::{Body, Request};
use shared::AppState;
use shared::http::{ApiError, ApiResult};

/// Serves one request.
pub async fn handle(_request: Request, _state: AppState) -> ApiResult<Response<Body>> {
    Err(ApiError::method_not_allowed("GET"))
}
