-- no-transaction
-- Sign-in looks users up by e-mail. Not unique: upstream never enforced it,
-- and an existing database may hold duplicates.

CREATE INDEX CONCURRENTLY IF NOT EXISTS "User_email_idx"
    ON "User" ("email");
