// Offline tests of the google.rpc detail decoding behind GatewayError.
import assert from "node:assert/strict";
import { test } from "node:test";

import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { ConnectError } from "@connectrpc/connect";

import { Code, GatewayError, decodeErrorInfo, decodeRetryDelayMs, toGatewayError } from "../src/index.js";

function errorInfo(reason: string, domain: string, metadata: Record<string, string>): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, 2).string(reason);
  w.tag(2, 2).string(domain);
  for (const [k, v] of Object.entries(metadata)) w.tag(3, 2).fork().tag(1, 2).string(k).tag(2, 2).string(v).join();
  w.tag(99, 0).int32(7); // an unknown field is skipped
  return w.finish();
}

function retryInfo(seconds: number, nanos: number): Uint8Array {
  return new BinaryWriter().tag(1, 2).fork().tag(1, 0).int64(seconds).tag(2, 0).int32(nanos).join().finish();
}

test("decodeErrorInfo", () => {
  assert.deepEqual(decodeErrorInfo(errorInfo("MODEL_NOT_FOUND", "responses-gateway", { param: "model", code: "model_not_found" })), {
    reason: "MODEL_NOT_FOUND",
    domain: "responses-gateway",
    metadata: { param: "model", code: "model_not_found" },
  });
});

test("decodeRetryDelayMs", () => {
  assert.equal(decodeRetryDelayMs(retryInfo(2, 500_000_000)), 2500);
  assert.equal(decodeRetryDelayMs(new Uint8Array()), undefined);
});

test("toGatewayError reads ErrorInfo and RetryInfo details", () => {
  const err = new ConnectError("Rate limit reached", Code.ResourceExhausted);
  err.details = [
    { type: "google.rpc.ErrorInfo", value: errorInfo("RATE_LIMITED", "responses-gateway", { retry_after: "3" }) },
    { type: "google.rpc.RetryInfo", value: retryInfo(1, 0) },
  ];
  const gw = toGatewayError(err);
  assert.ok(gw instanceof GatewayError);
  assert.equal(gw.code, Code.ResourceExhausted);
  assert.equal(gw.codeName, "RESOURCE_EXHAUSTED");
  assert.equal(gw.reason, "RATE_LIMITED");
  assert.equal(gw.domain, "responses-gateway");
  assert.equal(gw.message, "Rate limit reached");
  assert.equal(gw.retryAfterMs, 1000); // RetryInfo wins over metadata retry_after
  assert.equal(gw.cause, err);
});

test("toGatewayError falls back to metadata retry_after, then to nothing", () => {
  const err = new ConnectError("slow down", Code.ResourceExhausted);
  err.details = [{ type: "google.rpc.ErrorInfo", value: errorInfo("RATE_LIMITED", "responses-gateway", { retry_after: "1.5" }) }];
  assert.equal(toGatewayError(err).retryAfterMs, 1500);

  const bare = toGatewayError(new Error("boom"));
  assert.equal(bare.code, Code.Unknown);
  assert.equal(bare.reason, undefined);
  assert.deepEqual(bare.metadata, {});
  assert.equal(bare.retryAfterMs, undefined);
});
