//! The suggestions function's process: everything but the handler is shared.

#[tokio::main]
async fn main() -> Result<(), shared::runtime::Error> {
    shared::runtime::run_http("suggestions", suggestions::handle).await
}
