//! The OpenAPI description of the HTTP API, as `docs/openapi.json` holds it.
//!
//! The rows the API answers (chats, messages, votes, documents,
//! suggestions), the error body and the user type derive their schemas
//! where they are defined, in `shared`; [`bodies`] has the request bodies
//! and the few answers that are not rows; [`routes`] describes each route
//! (method, path, parameters, body, statuses) in one place. [`document`]
//! puts them together.
//!
//! `cargo run -p openapi` writes `docs/openapi.json`; the test
//! `tests/committed.rs` fails when the committed file is not what the code
//! gives, so CI catches a change to one without the other. Whether the
//! description matches what the functions answer is checked by running
//! schemathesis against the local stack (`tests/schemathesis/run.sh`).

pub mod bodies;
pub mod routes;

use utoipa::OpenApi;

/// Where the description is kept, relative to the workspace root.
pub const PATH: &str = "docs/openapi.json";

/// The description of the API.
pub fn document() -> utoipa::openapi::OpenApi {
    routes::Api::openapi()
}

/// The description as committed: pretty-printed JSON ending in a newline.
pub fn to_json() -> anyhow::Result<String> {
    let mut json = serde_json::to_string_pretty(&document())?;
    json.push('\n');
    Ok(json)
}
