//! SnapStart: no open connection is captured in a snapshot.

use lambda_runtime::{BoxFuture, SnapStartResource};

use super::Error;
use crate::db::Db;

/// Empties the pool before a SnapStart snapshot, so that no connection is
/// frozen into it (a restored copy would share the socket with every other
/// copy). After a restore the pool opens connections as it needs them.
///
/// Public so that the tests can hold a connection open before a snapshot,
/// which the functions' own init never does (their pool connects on first
/// use).
pub struct PoolSnapshotGuard(pub Db);

impl SnapStartResource for PoolSnapshotGuard {
    fn before_snapshot(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.0.close_idle().await;
            tracing::info!(
                open = self.0.size(),
                "closed idle connections before the snapshot"
            );
            Ok(())
        })
    }
}
