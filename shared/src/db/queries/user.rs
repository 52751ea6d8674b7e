//! `"User"`: accounts and guests.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::db::models::User;

/// Upstream's `getUser`: the users with this e-mail address (upstream
/// allows duplicates; a well-kept database has at most one).
pub async fn get_by_email<'e>(db: impl PgExecutor<'e>, email: &str) -> sqlx::Result<Vec<User>> {
    sqlx::query_as(r#"SELECT id, email, password FROM "User" WHERE email = $1 ORDER BY id"#)
        .bind(email)
        .fetch_all(db)
        .await
}

/// The user with this id.
pub async fn get_by_id<'e>(db: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as(r#"SELECT id, email, password FROM "User" WHERE id = $1"#)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Whether a user with this id exists (a session token outlives nothing).
pub async fn exists<'e>(db: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(r#"SELECT EXISTS (SELECT 1 FROM "User" WHERE id = $1)"#)
        .bind(id)
        .fetch_one(db)
        .await
}

/// Upstream's `createUser`, given the bcrypt hash (hashing is the caller's
/// work, off the async executor).
pub async fn create<'e>(
    db: impl PgExecutor<'e>,
    email: &str,
    password_hash: &str,
) -> sqlx::Result<User> {
    sqlx::query_as(
        r#"INSERT INTO "User" (email, password) VALUES ($1, $2) RETURNING id, email, password"#,
    )
    .bind(email)
    .bind(password_hash)
    .fetch_one(db)
    .await
}

/// Upstream's `createGuestUser`: `guest-<number>`. `number` is the
/// caller's (upstream uses `Date.now()`; callers add randomness so that two
/// guests in one millisecond differ). A guest has no password (`NULL`):
/// upstream stores the hash of a random UUID, which nobody can use either,
/// and its login treats `NULL` as "cannot sign in with a password".
pub async fn create_guest<'e>(db: impl PgExecutor<'e>, number: u128) -> sqlx::Result<User> {
    sqlx::query_as(r#"INSERT INTO "User" (email) VALUES ($1) RETURNING id, email, password"#)
        .bind(format!("guest-{number}"))
        .fetch_one(db)
        .await
}

/// Serialises work on one e-mail address until the transaction ends.
///
/// Upstream's `"User".email` has no unique index (an existing database may
/// hold duplicates, so we cannot add one), and "is it taken?" followed by
/// "insert" races: two registrations of one address could both succeed.
/// This transaction-scoped advisory lock on the address makes the second
/// wait until the first commits, then see its row. It is released with the
/// transaction (commit, rollback, or a dropped connection); the key is
/// namespaced so that it cannot meet another advisory lock by accident;
/// waiting is bounded by the connection's `statement_timeout`.
pub async fn lock_email<'e>(db: impl PgExecutor<'e>, email: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('User.email:' || $1, 0))")
        .bind(email)
        .execute(db)
        .await?;
    Ok(())
}

/// Makes sure a user that API Gateway's authorizer vouched for has a row,
/// so that their chats and documents can reference it. Cheap when it
/// exists already (no row is written).
pub async fn ensure_exists<'e>(db: impl PgExecutor<'e>, id: Uuid, email: &str) -> sqlx::Result<()> {
    // email is varchar(64) upstream.
    let email: String = email.chars().take(64).collect();
    sqlx::query(r#"INSERT INTO "User" (id, email) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"#)
        .bind(id)
        .bind(email)
        .execute(db)
        .await?;
    Ok(())
}
