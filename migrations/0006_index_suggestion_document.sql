-- no-transaction
-- A document's suggestions, and the foreign-key check when versions of a
-- document are deleted.

CREATE INDEX CONCURRENTLY IF NOT EXISTS "Suggestion_documentId_documentCreatedAt_idx"
    ON "Suggestion" ("documentId", "documentCreatedAt");
