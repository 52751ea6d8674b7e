// app/(chat)/api/history/route.ts of the upstream chatbot (GET), as a
// Lambda handler for API Gateway events, wrapped in withDbCleanup as the
// design document's "API Route Handling" says. The caller is identified as
// the Rust functions identify it (an HS256 session token, checked against
// "User"), so that both do the same work and answer the same JSON.

import { jwtVerify } from 'jose';
import { getChatsByUserId, userExists, withDbCleanup } from './queries.mjs';

const secret = new TextEncoder().encode(process.env.AUTH_SECRET ?? '');

const json = (statusCode, value) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(value),
});

const errors = {
  'bad_request:api': [400, "The request couldn't be processed. Please check your input and try again."],
  'unauthorized:chat': [401, 'You need to sign in to view this chat. Please sign in and try again.'],
};

const error = (code, cause) => {
  const [status, message] = errors[code];
  return json(status, { code, message, cause });
};

async function auth(event) {
  const header = event.headers?.authorization ?? event.headers?.Authorization;
  const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : null;
  if (!token) return null;
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: ['HS256'],
      issuer: 'chat-backend',
      requiredClaims: ['exp', 'sub'],
    });
    return { user: { id: payload.sub, type: payload.type } };
  } catch {
    return null;
  }
}

async function GET(event) {
  const params = event.queryStringParameters ?? {};
  const limit = Number.parseInt(params.limit || '10', 10);
  const startingAfter = params.starting_after;
  const endingBefore = params.ending_before;

  if (startingAfter && endingBefore) {
    return error('bad_request:api', 'Only one of starting_after or ending_before can be provided.');
  }

  const session = await auth(event);
  if (!session?.user || !(await userExists(session.user.id))) {
    return error('unauthorized:chat');
  }

  const chats = await getChatsByUserId({ id: session.user.id, limit });
  return json(200, chats);
}

export const handler = withDbCleanup(async (event) => {
  const method = event.requestContext?.http?.method ?? event.httpMethod;
  if (method === 'GET') return GET(event);
  return { statusCode: 405, headers: { allow: 'GET' }, body: '' };
});
