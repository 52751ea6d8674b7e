//! The migrate function's entry point: a Lambda function when the Lambda
//! Runtime API is there, a one-shot command otherwise (`cargo run -p
//! migrate` migrates the database in `POSTGRES_URL` and exits 0, or 1 with
//! the reason).

use std::process::ExitCode;

use lambda_runtime::{LambdaEvent, service_fn};
use migrate::{MIGRATOR, handle_invocation, migrate};
use serde_json::Value;
use shared::config::MigrateConfig;

#[tokio::main]
async fn main() -> ExitCode {
    let config = MigrateConfig::from_env();
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        // A command: stdout carries the report alone, logs go to stderr.
        lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
        return run_once(config).await;
    }
    shared::runtime::init_tracing();
    // As every function: SIGTERM closes connections (here, the migration's
    // own, with the process) and exits cleanly.
    shared::runtime::register_shutdown_hook().await;
    let client = migrate::AnswerClient::default();
    let result = lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        // No deadline (a local emulator's): no time to migrate in, as
        // Lambda would have ended the invocation.
        let time_left =
            shared::runtime::deadline::time_left(event.context.deadline).unwrap_or_default();
        handle_invocation(config.as_ref(), &client, event.payload, time_left)
    }))
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run_once(config: Result<MigrateConfig, shared::config::ConfigError>) -> ExitCode {
    let outcome = match config {
        Ok(config) => migrate(&config, &MIGRATOR).await.map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    match outcome {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("migration failed: {error}");
            ExitCode::FAILURE
        }
    }
}
