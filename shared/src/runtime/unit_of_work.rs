//! A unit of work outside a handler: a stream's end, a tool's write.

use std::future::Future;

use crate::db::{Outcome, Work};
use crate::http::{ApiResult, AppState, DbContext};

/// Runs `work` in a unit of work of its own, and ends it by the outcome:
/// what `work` wrote is committed if it answers `Ok`, rolled back if it
/// fails. `work` takes its connection from the state it is given
/// ([`AppState::connection`]), as a handler does; nothing commits by hand.
pub async fn unit_of_work<T, F, Fut>(state: &AppState, work: F) -> ApiResult<T>
where
    F: FnOnce(AppState) -> Fut,
    Fut: Future<Output = ApiResult<T>>,
{
    let unit = Work::begin(&state.db);
    let result = work(state.with_work(unit.clone())).await;
    let outcome = if result.is_ok() {
        Outcome::Commit
    } else {
        Outcome::RollBack
    };
    let ended = unit.end(outcome).await.context("commit the work");
    let value = result?;
    ended?;
    Ok(value)
}
