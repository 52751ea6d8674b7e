// A minimal Lambda runtime loop (the official runtime interface client is a
// native build): load the handler, then poll the Runtime API for an event,
// call the handler, post its answer, forever. AWS_LAMBDA_MAX_CONCURRENCY
// pollers run at once, as on Lambda Managed Instances; one by default, as
// on classic Lambda. SIGTERM closes the pool, as the design's shutdown.

import { closeAllConnections } from './queries.mjs';

const { handler } = await import(process.env.HANDLER_MODULE ?? './history.mjs');
const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;

async function post(path, body, headers = {}) {
  const response = await fetch(`${api}${path}`, { method: 'POST', body, headers });
  await response.arrayBuffer();
}

async function poll() {
  for (;;) {
    const next = await fetch(`${api}/invocation/next`);
    if (!next.ok) throw new Error(`/next answered ${next.status}`);
    const id = next.headers.get('lambda-runtime-aws-request-id');
    const deadline = Number(next.headers.get('lambda-runtime-deadline-ms'));
    const event = await next.json();
    const context = {
      awsRequestId: id,
      getRemainingTimeInMillis: () => deadline - Date.now(),
    };
    try {
      const result = await handler(event, context);
      await post(`/invocation/${id}/response`, JSON.stringify(result ?? null));
    } catch (error) {
      await post(
        `/invocation/${id}/error`,
        JSON.stringify({ errorType: error?.name ?? 'Error', errorMessage: String(error?.message ?? error) }),
        { 'lambda-runtime-function-error-type': 'Runtime.HandlerError' },
      );
    }
  }
}

process.on('SIGTERM', async () => {
  await closeAllConnections();
  process.exit(0);
});

const pollers = Math.max(1, Number.parseInt(process.env.AWS_LAMBDA_MAX_CONCURRENCY ?? '1', 10) || 1);
await Promise.all(Array.from({ length: pollers }, poll));
