-- no-transaction
-- A chat's messages in order, the per-user message count, and the foreign-key
-- checks when a chat is deleted.

CREATE INDEX CONCURRENTLY IF NOT EXISTS "Message_v2_chatId_createdAt_idx"
    ON "Message_v2" ("chatId", "createdAt");
