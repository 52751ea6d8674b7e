// Reads a chat response on stdin (server-sent events, as our chat function
// sends them) with the AI SDK's own parser and message reader, exactly as
// the chatbot's `useChat` consumes a response (`DefaultChatTransport`):
// every event is validated against the SDK's chunk schema, then the chunks
// are assembled into the message the user would see.
//
// Usage: node read-ui-stream.mjs <ai5|ai6> < response.txt
// Prints {"message": <UIMessage>, "errors": [<error texts>]} on stdout and
// exits 0; exits 1, saying why on stderr, if the stream does not parse.

const version = process.argv[2];
if (version !== "ai5" && version !== "ai6") {
  console.error("usage: node read-ui-stream.mjs <ai5|ai6>");
  process.exit(2);
}
const { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } = await import(version);

let input = "";
for await (const chunk of process.stdin) input += chunk;

const bytes = new ReadableStream({
  start(controller) {
    controller.enqueue(new TextEncoder().encode(input));
    controller.close();
  },
});

const errors = [];
const invalid = [];
const chunks = parseJsonEventStream({ stream: bytes, schema: uiMessageChunkSchema }).pipeThrough(
  new TransformStream({
    transform(result, controller) {
      // The SDK's reader ends quietly on a chunk it cannot read; we want
      // to hear about it.
      if (!result.success) {
        invalid.push(String(result.error?.message ?? result.error));
        throw result.error;
      }
      if (result.value.type === "error") errors.push(result.value.errorText);
      controller.enqueue(result.value);
    },
  }),
);

try {
  let message;
  for await (const current of readUIMessageStream({ stream: chunks })) message = current;
  if (invalid.length > 0) throw new Error(`invalid chunks: ${invalid.join("; ")}`);
  console.log(JSON.stringify({ message: message ?? null, errors }));
} catch (error) {
  console.error(`${version} could not read the stream: ${error?.stack ?? error}`);
  process.exit(1);
}
