// lib/db/queries.ts of the Node.js original, as the design document has it:
// one shared `postgres()` client, releaseConnection, closeDbConnection,
// closeAllConnections and withDbCleanup, word for word where the document
// gives the code. The queries are the history route's, with the same SQL as
// the Rust functions (shared/src/db/queries/{user,chat}.rs).

import postgres from 'postgres';

const postgresClient = postgres(process.env.POSTGRES_URL, {
  max: 10, // Maximum number of connections in the pool
  idle_timeout: 20, // Close idle connections after 20 seconds
  connect_timeout: 10, // Connection timeout of 10 seconds
  connection: { application_name: 'chat-backend-node:history' },
});

export async function releaseConnection() {
  // This is a no-op in the connection pool model
  // The connection will go back to the pool automatically after the query completes
  console.log('Connection released back to the pool');
}

export const closeDbConnection = releaseConnection;

export async function closeAllConnections() {
  try {
    await postgresClient.end({ timeout: 5 });
    console.log('All database connections closed successfully');
  } catch (error) {
    console.error('Error closing all database connections:', error);
  }
}

export function withDbCleanup(handler) {
  return async (...args) => {
    try {
      // Execute the original handler
      const result = await handler(...args);
      return result;
    } finally {
      // Connection will be released back to the pool automatically
      // We're just logging this for clarity
      releaseConnection().catch((error) => {
        console.error('Error releasing connection back to pool:', error);
      });
    }
  };
}

export async function userExists(id) {
  const [row] = await postgresClient`SELECT EXISTS (SELECT 1 FROM "User" WHERE id = ${id}) AS "exists"`;
  return row.exists;
}

// Upstream's getChatsByUserId for the newest page, with the Rust function's
// SQL (PAGE_NEWEST): limit + 1 rows tell whether there is more.
export async function getChatsByUserId({ id, limit }) {
  const rows = await postgresClient`
    SELECT id, "createdAt", title, "userId", visibility, TRUE AS cursor_found
    FROM "Chat"
    WHERE "userId" = ${id} AND ${null}::uuid IS NULL
    ORDER BY "createdAt" DESC, id DESC
    LIMIT ${limit + 1}`;
  const hasMore = rows.length > limit;
  const chats = rows.slice(0, limit).map(({ cursor_found, ...chat }) => chat);
  return { chats, hasMore };
}
