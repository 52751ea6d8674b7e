//! The chat function's process: the model is made once, everything else
//! is shared.

#[tokio::main]
async fn main() -> Result<(), shared::runtime::Error> {
    shared::runtime::init_tracing();
    let chat = chat::Chat::from_env()?;
    shared::runtime::run_http_streaming("chat", move |req, state| chat.clone().handle(req, state))
        .await
}
