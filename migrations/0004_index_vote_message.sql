-- no-transaction
-- The foreign-key check on "Vote_v2"."messageId" when messages are deleted
-- (the primary key starts with "chatId" and cannot serve it).

CREATE INDEX CONCURRENTLY IF NOT EXISTS "Vote_v2_messageId_idx"
    ON "Vote_v2" ("messageId");
