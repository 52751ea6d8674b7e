//! The guarded first statement: the liveness check that costs no round
//! trip.
//!
//! A connection handed out without a ping ([`super::warm`]: used a moment
//! ago) may still have died since: the server killed the session, or the
//! path went silent (a NAT or proxy dropped the flow). Its first statement
//! finds out, so it runs with the ping's bound, and:
//!
//! - a statement that can run twice harmlessly (a read, or a write that
//!   says so) runs with the ping's bound; if the connection is gone (closed, reset, or
//!   the server's "terminating connection" error) or does not answer
//!   within the bound, it is run again, once, on a fresh connection;
//! - a write is not guarded that way (it may have committed on the far
//!   side of a silence): the connection is pinged first, as before, and
//!   replaced if the ping fails. Writes pay the round trip; reads do not.
//!
//! What a statement is follows its text: one that contains `INSERT`,
//! `UPDATE` or `DELETE` (as our SQL spells them, `FOR UPDATE` included) is
//! a write, unless it carries the comment `/* replayable */`: its author
//! vouches that running it again after it committed changes nothing (an
//! insert of a row with its own id that does nothing if the row is there,
//! a column set to a value). After the first statement the connection is
//! known to be alive, and statements run unguarded.
//!
//! The trade: a read whose first run takes longer than the bound (2 s at
//! most, half the connect timeout) on a healthy connection is cut off and
//! run again, unbounded, on a fresh one; it takes twice as long instead of
//! failing. Our first statements are single indexed lookups.

use std::time::Duration;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgStatement};
use sqlx::{Execute, Postgres, SqlStr};

/// The comment with which a write says it may run twice (module docs).
const REPLAYABLE: &str = "/* replayable */";

/// A statement taken apart so that it can be sent again.
#[derive(Clone)]
pub(super) struct Replayable {
    sql: SqlStr,
    arguments: Option<PgArguments>,
    persistent: bool,
}

impl Replayable {
    /// Takes `query` apart; `None` for a statement prepared beforehand
    /// (it belongs to the connection it was prepared on).
    pub(super) fn of<'q>(mut query: impl Execute<'q, Postgres>) -> Result<Self, BoxDynError> {
        let arguments = query.take_arguments()?;
        let persistent = query.persistent();
        Ok(Self {
            sql: query.sql(),
            arguments,
            persistent,
        })
    }

    /// Whether running it twice would change nothing (module docs).
    pub(super) fn is_replayable(&self) -> bool {
        let sql = self.sql.as_str();
        sql.contains(REPLAYABLE)
            || !["INSERT", "UPDATE", "DELETE"]
                .iter()
                .any(|verb| sql.contains(verb))
    }
}

impl Execute<'_, Postgres> for Replayable {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&PgStatement> {
        None
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, BoxDynError> {
        Ok(self.arguments.take())
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

/// What the first attempt came to.
pub(super) enum Verdict<T> {
    /// Done (rows or a server's error): the connection is alive.
    Answered(sqlx::Result<T>),
    /// The connection is gone, or did not answer in time: run it again on
    /// a fresh connection.
    Rerun,
}

/// Judges the first attempt at a read, which ran for at most `bound`
/// (`None`: it ran out of time).
pub(super) fn judge<T>(attempt: Option<sqlx::Result<T>>, bound: Duration) -> Verdict<T> {
    match attempt {
        Some(Err(error)) if connection_lost(&error) => {
            tracing::debug!(%error, "the first statement found its connection gone; rerunning it");
            Verdict::Rerun
        }
        Some(answered) => Verdict::Answered(answered),
        None => {
            tracing::debug!(
                bound_ms = bound.as_millis() as u64,
                "no answer to the first statement; rerunning it on a fresh connection"
            );
            Verdict::Rerun
        }
    }
}
/// Whether `error` says the connection is unusable and the statement did
/// not run on it: the socket failed, or the server is ending the session
/// (SQLSTATE class 57P: admin shutdown, crash shutdown, cannot connect
/// now, idle session timeout).
pub(super) fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("57P")),
        _ => false,
    }
}
