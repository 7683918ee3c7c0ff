// Live tests of the client against a running gateway whose models are served by the fake OpenAI
// upstream (tests/fakes/openai_upstream.py); tests/clients/test_typescript_client.py sets it up.
//   GATEWAY_ADDR  gRPC address, e.g. http://127.0.0.1:50051 (the tests are skipped when unset)
//   GATEWAY_KEY   a key the gateway accepts
//   GATEWAY_RATE_LIMITED_MODEL, GATEWAY_ERROR_EVENT_MODEL  optional: models whose upstream answers
//     429 (retry-after: 1) / streams an `error` event then `response.failed`
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Code,
  GatewayError,
  ResponseStatus,
  createClient,
  outputText,
  textDelta,
  type GatewayClient,
  type ResponseStreamEvent,
} from "../src/index.js";

const ADDR = process.env["GATEWAY_ADDR"];
const KEY = process.env["GATEWAY_KEY"];
const RATE_LIMITED_MODEL = process.env["GATEWAY_RATE_LIMITED_MODEL"];
const ERROR_EVENT_MODEL = process.env["GATEWAY_ERROR_EVENT_MODEL"];
const skip = ADDR === undefined ? "GATEWAY_ADDR is not set (no live gateway)" : false;

const TEXT = "Hello! How can I help you today?"; // the fake's `text` transcript
const TEXT_EVENTS = [
  "responseCreated",
  "responseInProgress",
  "responseOutputItemAdded",
  "responseContentPartAdded",
  ...Array<string>(9).fill("responseOutputTextDelta"),
  "responseOutputTextDone",
  "responseContentPartDone",
  "responseOutputItemDone",
  "responseCompleted",
];

/** A client with the gateway's key, or with `options.apiKey` (undefined: none). */
function client(options: { apiKey?: string } = { apiKey: KEY }): GatewayClient {
  return createClient({ baseUrl: ADDR!, apiKey: options.apiKey, timeoutMs: 30_000 });
}

/** Awaits `promise`, which must reject with a GatewayError; returns it. */
async function gatewayError(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof GatewayError, `expected a GatewayError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

async function collect(events: AsyncIterable<ResponseStreamEvent>): Promise<ResponseStreamEvent[]> {
  const out: ResponseStreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe("live gateway", { skip }, () => {
  test("create, retrieve, input items, delete", async () => {
    const c = client();
    try {
      const response = await c.create({ model: "gpt-4.1", input: "Say hi" });
      assert.match(response.id, /^resp_/);
      assert.equal(response.status, ResponseStatus.COMPLETED);
      assert.equal(outputText(response), TEXT);

      const got = await c.retrieve(response.id);
      assert.equal(got.id, response.id);
      assert.equal(outputText(got), TEXT);

      const page = await c.inputItems(response.id, { order: "asc", limit: 10 });
      assert.equal(page.data.length, 1);
      const item = page.data[0]!;
      assert.equal(item.kind.case, "message");
      const content = item.kind.case === "message" ? item.kind.value.content?.kind : undefined;
      const text =
        content?.case === "text"
          ? content.value
          : content?.case === "parts"
            ? content.value.parts.map((p) => (p.kind.case === "inputText" ? p.kind.value.text : "")).join("")
            : undefined;
      assert.equal(text, "Say hi");

      const deleted = await c.delete(response.id);
      assert.equal(deleted.deleted, true);
      assert.equal(deleted.id, response.id);
      const err = await gatewayError(c.retrieve(response.id));
      assert.equal(err.code, Code.NotFound);
      assert.equal(err.codeName, "NOT_FOUND");
      assert.equal(err.reason, "RESPONSE_NOT_FOUND");
    } finally {
      c.close();
    }
  });

  test("create with a list of items", async () => {
    const c = client();
    try {
      const response = await c.create({
        model: "gpt-4.1",
        input: [{ kind: { case: "message", value: { role: 1, content: { kind: { case: "text", value: "two" } } } } }],
      });
      assert.equal(outputText(response), TEXT);
    } finally {
      c.close();
    }
  });

  test("stream: events in order, gapless sequence numbers, final response", async () => {
    const c = client();
    try {
      const stream = c.stream({ model: "gpt-4.1", input: "Say hi" });
      const events: ResponseStreamEvent[] = [];
      let text = "";
      for await (const event of stream) {
        events.push(event);
        text += textDelta(event) ?? "";
      }
      assert.deepEqual(
        events.map((e) => e.kind.case),
        TEXT_EVENTS,
      );
      assert.deepEqual(
        events.map((e) => e.sequenceNumber),
        events.map((_, i) => BigInt(i)),
      );
      assert.equal(text, TEXT);
      const final = await stream.finalResponse();
      assert.equal(final.status, ResponseStatus.COMPLETED);
      assert.equal(outputText(final), TEXT);
      assert.equal((await c.retrieve(final.id)).id, final.id);

      // finalResponse() alone drains the stream.
      const drained = await c.stream({ model: "gpt-4.1", input: "again" }).finalResponse();
      assert.equal(outputText(drained), TEXT);
    } finally {
      c.close();
    }
  });

  test("AbortSignal cancels a stream; the client works afterwards", async () => {
    const c = client();
    try {
      const controller = new AbortController();
      const stream = c.stream({ model: "gpt-4.1", input: "Say hi" }, { signal: controller.signal });
      const seen: string[] = [];
      const err = await gatewayError(
        (async () => {
          for await (const event of stream) {
            seen.push(event.kind.case ?? "");
            if (seen.length === 2) controller.abort();
          }
        })(),
      );
      assert.equal(err.code, Code.Canceled);
      // Cancelled before the end (events already in flight may still arrive).
      assert.ok(seen.length >= 2 && seen.length < TEXT_EVENTS.length, seen.join(", "));
      assert.deepEqual(seen, TEXT_EVENTS.slice(0, seen.length));
      assert.equal((await gatewayError(stream.finalResponse())).code, Code.Canceled);

      const aborted = AbortSignal.abort();
      assert.equal((await gatewayError(c.create({ model: "gpt-4.1", input: "x" }, { signal: aborted }))).code, Code.Canceled);

      assert.equal(outputText(await c.create({ model: "gpt-4.1", input: "again" })), TEXT);
    } finally {
      c.close();
    }
  });

  test("background response: replay from a sequence number, cancel", async () => {
    const c = client();
    try {
      const background = await c.create({ model: "gpt-4.1", input: "Say hi", background: true });
      const replay = c.streamRetrieve(background.id, 0);
      const events = await collect(replay);
      assert.ok(events.length > 0);
      assert.ok(events.every((e) => e.sequenceNumber > 0n));
      assert.equal(events.at(-1)?.kind.case, "responseCompleted");
      assert.equal(outputText(await replay.finalResponse()), TEXT);
      assert.equal((await c.cancel(background.id)).id, background.id);
    } finally {
      c.close();
    }
  });

  test("list models", async () => {
    const c = client();
    try {
      const models = await c.listModels();
      assert.ok(models.data.some((m) => m.id === "gpt-4.1"));
    } finally {
      c.close();
    }
  });

  test("unauthenticated: no key or a wrong key", async () => {
    for (const key of [undefined, "sk-wrong"]) {
      const c = client({ apiKey: key });
      try {
        const err = await gatewayError(c.create({ model: "gpt-4.1", input: "Say hi" }));
        assert.equal(err.code, Code.Unauthenticated);
        assert.equal(err.reason, "UNAUTHENTICATED");
        assert.equal(err.domain, "responses-gateway");
        assert.equal((await gatewayError(collect(c.stream({ model: "gpt-4.1", input: "Say hi" })))).reason, "UNAUTHENTICATED");
        assert.equal((await gatewayError(c.listModels())).reason, "UNAUTHENTICATED");
      } finally {
        c.close();
      }
    }
  });

  test("unknown model", async () => {
    const c = client();
    try {
      const err = await gatewayError(c.create({ model: "no-such-model", input: "Say hi" }));
      assert.equal(err.code, Code.NotFound);
      assert.equal(err.reason, "MODEL_NOT_FOUND");
      assert.equal(err.metadata["param"], "model");
      const streamErr = await gatewayError(c.stream({ model: "no-such-model", input: "Say hi" }).finalResponse());
      assert.equal(streamErr.reason, "MODEL_NOT_FOUND");
    } finally {
      c.close();
    }
  });

  test("deadline", async () => {
    const c = createClient({ baseUrl: ADDR!, apiKey: KEY, timeoutMs: 1 });
    try {
      const err = await gatewayError(c.create({ model: "gpt-4.1", input: "Say hi" }));
      assert.equal(err.code, Code.DeadlineExceeded);
    } finally {
      c.close();
    }
  });

  test("upstream rate limit: RATE_LIMITED with retryAfterMs", { skip: RATE_LIMITED_MODEL === undefined }, async () => {
    const c = client();
    try {
      const err = await gatewayError(c.create({ model: RATE_LIMITED_MODEL, input: "Say hi" }));
      assert.equal(err.code, Code.ResourceExhausted);
      assert.equal(err.reason, "RATE_LIMITED");
      assert.equal(err.retryAfterMs, 1000);
      const streamErr = await gatewayError(collect(c.stream({ model: RATE_LIMITED_MODEL, input: "Say hi" })));
      assert.equal(streamErr.reason, "RATE_LIMITED");
      assert.equal(streamErr.retryAfterMs, 1000);
    } finally {
      c.close();
    }
  });

  test("error event mid-stream, then response.failed", { skip: ERROR_EVENT_MODEL === undefined }, async () => {
    const c = client();
    try {
      const stream = c.stream({ model: ERROR_EVENT_MODEL, input: "Say hi" });
      const kinds = (await collect(stream)).map((e) => e.kind.case);
      assert.ok(kinds.includes("error"), `no error event in ${kinds.join(", ")}`);
      const final = await stream.finalResponse();
      assert.equal(final.status, ResponseStatus.FAILED);
    } finally {
      c.close();
    }
  });
});

test("unreachable gateway: UNAVAILABLE without a reason", async () => {
  const c = createClient({ baseUrl: "http://127.0.0.1:1", timeoutMs: 5_000 });
  try {
    const err = await gatewayError(c.listModels());
    assert.equal(err.code, Code.Unavailable);
    assert.equal(err.reason, undefined);
  } finally {
    c.close();
  }
});
