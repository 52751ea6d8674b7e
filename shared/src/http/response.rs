//! Writing responses.

use http::{HeaderValue, Response, StatusCode, header};
use lambda_http::Body;
use serde::Serialize;

use super::{ApiError, ApiResult};

/// A JSON response with `status`.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> ApiResult<Response<Body>> {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// A `200 OK` JSON response.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> ApiResult<Response<Body>> {
    json(StatusCode::OK, value)
}

/// A plain-text response, for the few routes that answer text upstream
/// (`new Response("...")`, which sends `text/plain;charset=UTF-8`).
pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    response
}
