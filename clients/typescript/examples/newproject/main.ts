// A program outside the package that uses it as another project does: its package.json depends on
// "@responses-gateway/client" installed from a tarball (`npm pack`) or a `file:` path (../../README.md,
// "Use it from your project"). Build and run against a gateway (the `mock` model of `make run`):
//
//   npm install && npx tsc && GATEWAY_ADDR=http://localhost:50051 node dist/main.js
//
// GATEWAY_KEY is sent as the API key when set. It creates a response, streams one and shows a typed
// error; an unexpected failure exits non-zero.
import { Code, GatewayError, ResponseStatus, createClient, outputText, textDelta } from "@responses-gateway/client";

const model = process.env.GATEWAY_MODEL ?? "mock";
const client = createClient({
  baseUrl: process.env.GATEWAY_ADDR ?? "http://localhost:50051",
  apiKey: process.env.GATEWAY_KEY,
  timeoutMs: 30_000,
});

// Enums are numbers (`ResponseStatus.COMPLETED` is 1); the enum object maps them back to names.
const statusName = (status: ResponseStatus | undefined): string => ResponseStatus[status ?? ResponseStatus.UNSPECIFIED];

const response = await client.create({ model, input: "Say hello" });
console.log("created:", response.id, statusName(response.status), outputText(response));

const stream = client.stream({ model, input: "Say hello" });
let text = "";
for await (const event of stream) {
  text += textDelta(event) ?? "";
}
const final = await stream.finalResponse();
console.log("streamed:", text);
console.log("final:", final.id, statusName(final.status));

try {
  await client.create({ model: "no-such-model", input: "Say hello" });
  throw new Error("an unknown model was accepted");
} catch (err) {
  if (!(err instanceof GatewayError)) throw err;
  console.log("error:", err.code === Code.NotFound, err.codeName, err.reason, err.metadata.param);
}
client.close();
