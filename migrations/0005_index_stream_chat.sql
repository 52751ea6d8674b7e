-- no-transaction
-- A chat's stream ids, and the foreign-key check when a chat is deleted.

CREATE INDEX CONCURRENTLY IF NOT EXISTS "Stream_chatId_createdAt_idx"
    ON "Stream" ("chatId", "createdAt");
