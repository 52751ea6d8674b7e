//! Every query function of `shared::db::queries`, against a real server:
//! what it returns, what it changes, its edges (pagination, cascades,
//! timestamps) and who it lets see what.

use chrono::Duration;
use integration_tests::TestDb;
use serde_json::json;
use shared::db::models::{self, Suggestion};
use shared::db::queries::chat::{self, Cursor};
use shared::db::queries::message::{self, NewMessage};
use shared::db::queries::vote::{self, VoteType};
use shared::db::queries::{document, stream, suggestion, user};
use sqlx::PgPool;
use uuid::Uuid;

async fn a_user(pool: &PgPool, email: &str) -> Uuid {
    user::create(pool, email, "$2b$10$hash")
        .await
        .expect("user")
        .id
}

async fn a_chat(pool: &PgPool, user_id: Uuid, title: &str) -> Uuid {
    let id = Uuid::new_v4();
    chat::save(pool, id, user_id, title, "private")
        .await
        .expect("chat");
    id
}

fn a_message(chat_id: Uuid, role: &str, text: &str) -> NewMessage {
    NewMessage {
        id: Uuid::new_v4(),
        chat_id,
        role: role.to_owned(),
        parts: json!([{"type": "text", "text": text}]),
        attachments: json!([]),
        created_at: models::now(),
    }
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        r#"SELECT count(*) FROM "{table}""#
    )))
    .fetch_one(pool)
    .await
    .expect("count")
}

#[tokio::test]
async fn users_are_created_found_by_email_and_id_and_never_duplicated_by_ensure() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = user::create(pool, "ada@example.com", "$2b$10$x")
        .await
        .expect("create");
    assert_eq!(ada.email, "ada@example.com");
    assert_eq!(ada.password.as_deref(), Some("$2b$10$x"));

    let found = user::get_by_email(pool, "ada@example.com")
        .await
        .expect("by email");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, ada.id);
    assert!(
        user::get_by_email(pool, "nobody@example.com")
            .await
            .expect("query")
            .is_empty()
    );
    assert_eq!(
        user::get_by_id(pool, ada.id)
            .await
            .expect("by id")
            .map(|u| u.id),
        Some(ada.id)
    );
    assert!(user::exists(pool, ada.id).await.expect("exists"));
    assert!(!user::exists(pool, Uuid::new_v4()).await.expect("exists"));

    let guest = user::create_guest(pool, 17_327_000_000_001_234)
        .await
        .expect("guest");
    assert_eq!(guest.email, "guest-17327000000001234");
    assert_eq!(guest.password, None, "a guest has no password");

    let vouched = Uuid::new_v4();
    user::ensure_exists(pool, vouched, "cognito@example.com")
        .await
        .expect("ensure");
    user::ensure_exists(pool, vouched, "cognito@example.com")
        .await
        .expect("ensure again");
    let row = user::get_by_id(pool, vouched)
        .await
        .expect("by id")
        .expect("created");
    assert_eq!(row.email, "cognito@example.com");
    assert_eq!(row.password, None);
    assert_eq!(count(pool, "User").await, 3);

    // email is varchar(64) upstream: ensure_exists must not fail on a long one.
    user::ensure_exists(pool, Uuid::new_v4(), &"x".repeat(100))
        .await
        .expect("truncated");
}

#[tokio::test]
async fn the_email_lock_holds_a_second_transaction_until_the_first_ends() {
    use sqlx::Connection;
    let db = TestDb::migrated().await;
    // Three sessions at once: a pool of its own (the observer's is small),
    // straight to the server. The query functions run on its raw
    // connections here, whose statements are named: behind a
    // transaction-mode pooler only a unit of work's connections prepare
    // them unnamed (the pooler pass would make this test about that).
    let mut config = db
        .config_at("lock-test", &db.url(), &[("DB_POOLER", "")])
        .db;
    config.pool_max.max = 4;
    let sessions = shared::db::Db::connect_lazy(&config);
    let pool = sessions.pool();
    let mut first = pool.acquire().await.expect("connection");
    let mut tx = first.begin().await.expect("begin");
    user::lock_email(&mut *tx, "ada@example.com")
        .await
        .expect("lock");

    let pool2 = pool.clone();
    let second = tokio::spawn(async move {
        let mut conn = pool2.acquire().await.expect("connection");
        let mut tx = conn.begin().await.expect("begin");
        user::lock_email(&mut *tx, "ada@example.com")
            .await
            .expect("lock");
        tx.commit().await.expect("commit");
    });
    // Another address is not held up.
    let mut other = pool.acquire().await.expect("connection");
    let mut other_tx = other.begin().await.expect("begin");
    user::lock_email(&mut *other_tx, "babbage@example.com")
        .await
        .expect("lock");
    other_tx.commit().await.expect("commit");
    drop(other);

    // The second is queued on the lock, not merely slow.
    let mut waiting = 0_i64;
    for _ in 0..100 {
        waiting = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(db.observer())
        .await
        .expect("pg_locks");
        if waiting == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(waiting, 1, "the second waits for the first");
    assert!(!second.is_finished());
    tx.commit().await.expect("commit");
    tokio::time::timeout(std::time::Duration::from_secs(5), second)
        .await
        .expect("the second goes on once the first ends")
        .expect("no panic");
}

#[tokio::test]
async fn a_saved_chat_reads_back_and_its_title_and_visibility_change() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = a_user(pool, "ada@example.com").await;
    let id = Uuid::new_v4();
    let saved = chat::save(pool, id, ada, "Hello", "public")
        .await
        .expect("save");
    assert_eq!(saved.id, id);
    assert_eq!(saved.user_id, ada);
    assert_eq!(saved.visibility, "public");
    assert_eq!(
        chat::get_by_id(pool, id).await.expect("get"),
        Some(saved.clone())
    );
    assert_eq!(
        chat::get_by_id(pool, Uuid::new_v4()).await.expect("get"),
        None
    );

    assert!(
        chat::update_title(pool, id, "Renamed")
            .await
            .expect("title")
    );
    assert!(
        chat::update_visibility(pool, id, "private")
            .await
            .expect("visibility")
    );
    let updated = chat::get_by_id(pool, id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (updated.title.as_str(), updated.visibility.as_str()),
        ("Renamed", "private")
    );
    assert!(
        !chat::update_title(pool, Uuid::new_v4(), "x")
            .await
            .expect("no such chat")
    );
}

#[tokio::test]
async fn history_pages_walk_every_chat_once_newest_first_and_only_the_owners() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = a_user(pool, "ada@example.com").await;
    let babbage = a_user(pool, "babbage@example.com").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(a_chat(pool, ada, &format!("chat {i}")).await);
    }
    let babbages = a_chat(pool, babbage, "not Ada's").await;
    // Two chats in the same millisecond must still page apart cleanly.
    sqlx::query(r#"UPDATE "Chat" SET "createdAt" = (SELECT "createdAt" FROM "Chat" WHERE id = $1) WHERE id = $2"#)
        .bind(ids[3])
        .bind(ids[4])
        .execute(pool)
        .await
        .expect("same timestamp");

    let all = chat::page_by_user_id(pool, ada, 100, Cursor::Newest)
        .await
        .expect("page")
        .expect("found");
    assert_eq!(all.chats.len(), 7);
    assert!(!all.has_more);
    assert!(
        all.chats
            .windows(2)
            .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id))
    );
    assert!(all.chats.iter().all(|c| c.user_id == ada));

    // Walk back in pages of 3 with ending_before, as the sidebar does.
    let mut walked = Vec::new();
    let mut cursor = Cursor::Newest;
    loop {
        let page = chat::page_by_user_id(pool, ada, 3, cursor)
            .await
            .expect("page")
            .expect("found");
        walked.extend(page.chats.iter().map(|c| c.id));
        if !page.has_more {
            break;
        }
        cursor = Cursor::EndingBefore(page.chats.last().expect("non-empty page").id);
    }
    let expected: Vec<Uuid> = all.chats.iter().map(|c| c.id).collect();
    assert_eq!(walked, expected);

    // starting_after: the newest chats newer than the cursor (upstream).
    let oldest = *expected.last().expect("chats");
    let newer = chat::page_by_user_id(pool, ada, 2, Cursor::StartingAfter(oldest))
        .await
        .expect("page")
        .expect("found");
    assert_eq!(
        newer.chats.iter().map(|c| c.id).collect::<Vec<_>>(),
        expected[..2]
    );
    assert!(newer.has_more);
    let newest = expected[0];
    let none_newer = chat::page_by_user_id(pool, ada, 2, Cursor::StartingAfter(newest))
        .await
        .expect("page")
        .expect("found");
    assert!(none_newer.chats.is_empty() && !none_newer.has_more);

    // A cursor that is not one of the caller's chats is "not found".
    for cursor in [
        Cursor::EndingBefore(babbages),
        Cursor::StartingAfter(Uuid::new_v4()),
    ] {
        assert_eq!(
            chat::page_by_user_id(pool, ada, 3, cursor)
                .await
                .expect("page"),
            None
        );
    }
    // A user with no chats gets an empty page.
    let nobody = a_user(pool, "nobody@example.com").await;
    let empty = chat::page_by_user_id(pool, nobody, 10, Cursor::Newest)
        .await
        .expect("page")
        .expect("found");
    assert!(empty.chats.is_empty() && !empty.has_more);
}

#[tokio::test]
async fn deleting_a_chat_takes_its_messages_votes_and_streams_and_nothing_else() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = a_user(pool, "ada@example.com").await;
    let doomed = a_chat(pool, ada, "doomed").await;
    let kept = a_chat(pool, ada, "kept").await;
    for chat_id in [doomed, kept] {
        let answer = a_message(chat_id, "assistant", "hi");
        message::save_all(pool, &[a_message(chat_id, "user", "hello"), answer.clone()])
            .await
            .expect("messages");
        vote::vote(pool, chat_id, answer.id, VoteType::Up)
            .await
            .expect("vote");
        stream::create(pool, Uuid::new_v4(), chat_id)
            .await
            .expect("stream");
    }

    let deleted = chat::delete_by_id(pool, doomed)
        .await
        .expect("delete")
        .expect("existed");
    assert_eq!(deleted.id, doomed);
    assert_eq!(
        chat::delete_by_id(pool, doomed)
            .await
            .expect("delete again"),
        None
    );
    assert_eq!(count(pool, "Chat").await, 1);
    assert_eq!(count(pool, "Message_v2").await, 2);
    assert_eq!(count(pool, "Vote_v2").await, 1);
    assert_eq!(count(pool, "Stream").await, 1);
    assert_eq!(
        message::get_by_chat_id(pool, kept)
            .await
            .expect("kept")
            .len(),
        2
    );
}

#[tokio::test]
async fn deleting_all_chats_of_a_user_leaves_other_users_alone() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = a_user(pool, "ada@example.com").await;
    let babbage = a_user(pool, "babbage@example.com").await;
    for owner in [ada, ada, ada, babbage] {
        let chat_id = a_chat(pool, owner, "chat").await;
        let m = a_message(chat_id, "assistant", "hi");
        message::save_all(pool, std::slice::from_ref(&m))
            .await
            .expect("message");
        vote::vote(pool, chat_id, m.id, VoteType::Down)
            .await
            .expect("vote");
        stream::create(pool, Uuid::new_v4(), chat_id)
            .await
            .expect("stream");
    }
    assert_eq!(
        chat::delete_all_by_user_id(pool, ada)
            .await
            .expect("delete"),
        3
    );
    assert_eq!(
        chat::delete_all_by_user_id(pool, ada).await.expect("again"),
        0
    );
    for table in ["Chat", "Message_v2", "Vote_v2", "Stream"] {
        assert_eq!(count(pool, table).await, 1, "{table}");
    }
    let left = chat::page_by_user_id(pool, babbage, 10, Cursor::Newest)
        .await
        .expect("page")
        .expect("found");
    assert_eq!(left.chats.len(), 1);
}

#[tokio::test]
async fn messages_save_in_one_go_read_in_order_update_and_delete_after_a_time() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = a_user(pool, "ada@example.com").await;
    let chat_id = a_chat(pool, ada, "chat").await;
    let base = models::now();
    let mut messages: Vec<NewMessage> = (0..4)
        .map(|i| {
            let mut m = a_message(
                chat_id,
                if i % 2 == 0 { "user" } else { "assistant" },
                &format!("m{i}"),
            );
            m.created_at = base + Duration::seconds(i);
            m
        })
        .collect();
    // JSON is stored as sent (the columns are `json`, not `jsonb`).
    messages[0].parts =
        serde_json::from_str(r#"[{"type":"text","text":"ünïcödé \"quoted\""}]"#).expect("json");
    assert_eq!(message::save_all(pool, &messages).await.expect("save"), 4);
    assert_eq!(message::save_all(pool, &[]).await.expect("nothing"), 0);

    let read = message::get_by_chat_id(pool, chat_id).await.expect("read");
    assert_eq!(
        read.iter().map(|m| m.id).collect::<Vec<_>>(),
        messages.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    assert_eq!(read[0].parts.0, messages[0].parts);
    assert_eq!(read[0].created_at, messages[0].created_at);
    let one = message::get_by_id(pool, messages[1].id)
        .await
        .expect("by id")
        .expect("exists");
    assert_eq!(one.role, "assistant");
    assert_eq!(
        message::get_by_id(pool, Uuid::new_v4())
            .await
            .expect("by id"),
        None
    );

    let new_parts = json!([{"type": "text", "text": "edited"}]);
    assert!(
        message::update_parts(pool, messages[1].id, &new_parts)
            .await
            .expect("update")
    );
    assert_eq!(
        message::get_by_id(pool, messages[1].id)
            .await
            .expect("get")
            .expect("exists")
            .parts
            .0,
        new_parts
    );

    vote::vote(pool, chat_id, messages[3].id, VoteType::Up)
        .await
        .expect("vote");
    vote::vote(pool, chat_id, messages[1].id, VoteType::Up)
        .await
        .expect("vote");
    // At or after the third message's time: the third and fourth go, with
    // the fourth's vote.
    let gone = message::delete_by_chat_id_after(pool, chat_id, messages[2].created_at)
        .await
        .expect("delete");
    assert_eq!(gone, 2);
    assert_eq!(
        message::get_by_chat_id(pool, chat_id)
            .await
            .expect("read")
            .len(),
        2
    );
    assert_eq!(
        vote::get_by_chat_id(pool, chat_id)
            .await
            .expect("votes")
            .len(),
        1
    );
}

#[tokio::test]
async fn the_message_count_covers_the_users_own_messages_in_the_window_only() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = a_user(pool, "ada@example.com").await;
    let babbage = a_user(pool, "babbage@example.com").await;
    let adas = a_chat(pool, ada, "a").await;
    let babbages = a_chat(pool, babbage, "b").await;
    let mut old = a_message(adas, "user", "yesterday's");
    old.created_at = models::now() - Duration::hours(25);
    message::save_all(
        pool,
        &[
            a_message(adas, "user", "1"),
            a_message(adas, "user", "2"),
            a_message(adas, "assistant", "not counted"),
            a_message(babbages, "user", "not Ada's"),
            old,
        ],
    )
    .await
    .expect("messages");
    assert_eq!(
        message::count_by_user_id(pool, ada, 24)
            .await
            .expect("count"),
        2
    );
    assert_eq!(
        message::count_by_user_id(pool, ada, 48)
            .await
            .expect("count"),
        3
    );
    assert_eq!(
        message::count_by_user_id(pool, babbage, 24)
            .await
            .expect("count"),
        1
    );
}

#[tokio::test]
async fn a_vote_is_recorded_then_changed_in_place() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = a_user(pool, "ada@example.com").await;
    let chat_id = a_chat(pool, ada, "chat").await;
    let m = a_message(chat_id, "assistant", "answer");
    message::save_all(pool, std::slice::from_ref(&m))
        .await
        .expect("message");
    let up = vote::vote(pool, chat_id, m.id, VoteType::Up)
        .await
        .expect("up");
    assert!(up.is_upvoted);
    let down = vote::vote(pool, chat_id, m.id, VoteType::Down)
        .await
        .expect("down");
    assert!(!down.is_upvoted);
    let votes = vote::get_by_chat_id(pool, chat_id).await.expect("votes");
    assert_eq!(votes, vec![down]);
    assert!(
        vote::get_by_chat_id(pool, Uuid::new_v4())
            .await
            .expect("votes")
            .is_empty()
    );
    // A vote on a message that does not exist is refused by the schema.
    assert!(
        vote::vote(pool, chat_id, Uuid::new_v4(), VoteType::Up)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn document_versions_accumulate_and_newer_ones_delete_with_their_suggestions() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = a_user(pool, "ada@example.com").await;
    let id = Uuid::new_v4();
    let mut versions = Vec::new();
    // Back to back, in the same millisecond or not: each version is stamped
    // after the last, so versions never collide and stay ordered.
    for content in ["one", "two", "three"] {
        versions.push(
            document::save(pool, id, "Essay", "text", content, ada)
                .await
                .expect("save")
                .expect("saved"),
        );
    }
    assert!(
        versions
            .windows(2)
            .all(|w| w[0].created_at < w[1].created_at)
    );
    assert_eq!(versions[2].kind, "text");
    assert_eq!(document::owner(pool, id).await.expect("owner"), Some(ada));
    assert_eq!(
        document::owner(pool, Uuid::new_v4()).await.expect("owner"),
        None
    );
    assert_eq!(
        document::get_versions(pool, id).await.expect("versions"),
        versions
    );
    assert_eq!(
        document::get_latest(pool, id)
            .await
            .expect("latest")
            .as_ref(),
        Some(&versions[2])
    );
    assert_eq!(
        document::get_latest(pool, Uuid::new_v4())
            .await
            .expect("latest"),
        None
    );

    let suggestion_on = |version: &models::Document| Suggestion {
        id: Uuid::new_v4(),
        document_id: id,
        document_created_at: version.created_at,
        original_text: "a".into(),
        suggested_text: "b".into(),
        description: Some("why".into()),
        is_resolved: false,
        user_id: ada,
        created_at: models::now(),
    };
    let on_first = suggestion_on(&versions[0]);
    let on_third = suggestion_on(&versions[2]);
    assert_eq!(
        suggestion::save_all(pool, &[on_first.clone(), on_third])
            .await
            .expect("save"),
        2
    );
    assert_eq!(suggestion::save_all(pool, &[]).await.expect("nothing"), 0);
    assert_eq!(
        suggestion::get_by_document_id(pool, id)
            .await
            .expect("get")
            .len(),
        2
    );

    // The client sends back the createdAt it was given (milliseconds):
    // "after the first version" deletes the second and third exactly.
    let given = models::parse_timestamp(&models::timestamp::format(&versions[0].created_at))
        .expect("parses");
    let deleted = document::delete_after(pool, id, given)
        .await
        .expect("delete");
    assert_eq!(deleted, versions[1..].to_vec());
    assert_eq!(
        document::get_versions(pool, id).await.expect("versions"),
        versions[..1].to_vec()
    );
    assert_eq!(
        suggestion::get_by_document_id(pool, id).await.expect("get"),
        vec![on_first]
    );
}

#[tokio::test]
async fn stream_ids_are_recorded_per_chat_in_order() {
    let db = TestDb::migrated().await;
    let pool = db.observer();
    let ada = a_user(pool, "ada@example.com").await;
    let chat_id = a_chat(pool, ada, "chat").await;
    let other = a_chat(pool, ada, "other").await;
    let first = Uuid::new_v4();
    let second = Uuid::new_v4();
    stream::create(pool, first, chat_id).await.expect("first");
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    stream::create(pool, second, chat_id).await.expect("second");
    stream::create(pool, Uuid::new_v4(), other)
        .await
        .expect("other");
    assert_eq!(
        stream::ids_by_chat_id(pool, chat_id).await.expect("ids"),
        vec![first, second]
    );
    assert!(
        stream::ids_by_chat_id(pool, Uuid::new_v4())
            .await
            .expect("ids")
            .is_empty()
    );
}
