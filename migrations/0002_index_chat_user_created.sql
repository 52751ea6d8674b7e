-- no-transaction
-- History pages: a user's chats, newest first (and the per-user message
-- count, which starts from the user's chats). Built CONCURRENTLY so that a
-- deploy onto a busy upstream database does not block writes; one index per
-- migration, because CONCURRENTLY cannot share a transaction.

CREATE INDEX CONCURRENTLY IF NOT EXISTS "Chat_userId_createdAt_id_idx"
    ON "Chat" ("userId", "createdAt" DESC, "id" DESC);
