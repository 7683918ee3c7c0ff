// Typed errors built from the gateway's rich gRPC status: grpc-status-details-bin carries a
// google.rpc.Status whose details hold a google.rpc.ErrorInfo (domain "responses-gateway", reason
// such as MODEL_NOT_FOUND, metadata param / code / retry_after) and sometimes a google.rpc.RetryInfo.
//
// @bufbuild/protobuf ships only the well-known types, not googleapis' google.rpc ones, so the two
// detail messages are decoded here straight from the wire with protobuf-es' BinaryReader, by the
// field numbers of google/rpc/error_details.proto:
//   ErrorInfo  { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
//   RetryInfo  { google.protobuf.Duration retry_delay = 1; }
//   Duration   { int64 seconds = 1; int32 nanos = 2; }
import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export { Code };

/** The decoded google.rpc.ErrorInfo of an error. */
export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

/** The gRPC status code names (`UNAUTHENTICATED`, `NOT_FOUND`...), indexed by code. */
const CODE_NAMES: Record<number, string> = {
  0: "OK",
  1: "CANCELLED",
  2: "UNKNOWN",
  3: "INVALID_ARGUMENT",
  4: "DEADLINE_EXCEEDED",
  5: "NOT_FOUND",
  6: "ALREADY_EXISTS",
  7: "PERMISSION_DENIED",
  8: "RESOURCE_EXHAUSTED",
  9: "FAILED_PRECONDITION",
  10: "ABORTED",
  11: "OUT_OF_RANGE",
  12: "UNIMPLEMENTED",
  13: "INTERNAL",
  14: "UNAVAILABLE",
  15: "DATA_LOSS",
  16: "UNAUTHENTICATED",
};

/** The gRPC name of a status code, e.g. 16 -> "UNAUTHENTICATED". */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `CODE_${code}`;
}

export interface GatewayErrorInit {
  /** gRPC status code (numerically equal to Connect's `Code`). */
  code?: number;
  reason?: string;
  domain?: string;
  metadata?: Record<string, string>;
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * An error from the gateway (or from reaching it).
 *
 * `code` is the gRPC status code (`Code.Unauthenticated` = 16...), `codeName` its gRPC name,
 * `reason` the ErrorInfo reason (UPPER_SNAKE, e.g. `MODEL_NOT_FOUND`; undefined when the status
 * carried no ErrorInfo, e.g. the gateway was unreachable), `metadata` the ErrorInfo metadata
 * (`param`, `code`, `retry_after`...), `retryAfterMs` how long to wait before retrying, if known.
 */
export class GatewayError extends Error {
  override name = "GatewayError";
  readonly code: number;
  readonly reason: string | undefined;
  readonly domain: string | undefined;
  readonly metadata: Record<string, string>;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: GatewayErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code ?? Code.Unknown;
    this.reason = init.reason;
    this.domain = init.domain;
    this.metadata = init.metadata ?? {};
    this.retryAfterMs = init.retryAfterMs;
  }

  /** The gRPC name of `code`, e.g. "UNAUTHENTICATED". */
  get codeName(): string {
    return codeName(this.code);
  }

  override toString(): string {
    const reason = this.reason ? ` ${this.reason}` : "";
    return `${this.name} [${this.codeName}${reason}]: ${this.message}`;
  }
}

/** Converts anything a call threw (a ConnectError, an AbortError...) into a GatewayError. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const connectErr = ConnectError.from(err);
  let info: ErrorInfo | undefined;
  let retryAfterMs: number | undefined;
  for (const detail of connectErr.details) {
    // Incoming details are {type, value}; outgoing ones ({desc, value}) never come with a received error.
    if (!("type" in detail) || !(detail.value instanceof Uint8Array)) continue;
    try {
      if (detail.type === "google.rpc.ErrorInfo" && info === undefined) {
        info = decodeErrorInfo(detail.value);
      } else if (detail.type === "google.rpc.RetryInfo" && retryAfterMs === undefined) {
        retryAfterMs = decodeRetryDelayMs(detail.value);
      }
    } catch {
      // A malformed detail is ignored, as ConnectError.findDetails does.
    }
  }
  const metadata = info?.metadata ?? {};
  if (retryAfterMs === undefined && metadata["retry_after"] !== undefined) {
    const seconds = Number(metadata["retry_after"]);
    if (Number.isFinite(seconds)) retryAfterMs = Math.round(seconds * 1000);
  }
  return new GatewayError(connectErr.rawMessage, {
    code: connectErr.code,
    reason: info?.reason || undefined,
    domain: info?.domain || undefined,
    metadata,
    retryAfterMs,
    cause: err,
  });
}

/** Decodes a serialized google.rpc.ErrorInfo. */
export function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  const info: ErrorInfo = { reason: "", domain: "", metadata: {} };
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      info.reason = reader.string();
    } else if (field === 2 && wireType === WireType.LengthDelimited) {
      info.domain = reader.string();
    } else if (field === 3 && wireType === WireType.LengthDelimited) {
      const entry = new BinaryReader(reader.bytes());
      let key = "";
      let value = "";
      while (entry.pos < entry.len) {
        const [f, w] = entry.tag();
        if (f === 1 && w === WireType.LengthDelimited) key = entry.string();
        else if (f === 2 && w === WireType.LengthDelimited) value = entry.string();
        else entry.skip(w, f);
      }
      info.metadata[key] = value;
    } else {
      reader.skip(wireType, field);
    }
  }
  return info;
}

/** Decodes a serialized google.rpc.RetryInfo into its retry_delay in milliseconds (undefined if unset). */
export function decodeRetryDelayMs(bytes: Uint8Array): number | undefined {
  const reader = new BinaryReader(bytes);
  let delayMs: number | undefined;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      const duration = new BinaryReader(reader.bytes());
      let seconds = 0;
      let nanos = 0;
      while (duration.pos < duration.len) {
        const [f, w] = duration.tag();
        if (f === 1 && w === WireType.Varint) seconds = Number(duration.int64());
        else if (f === 2 && w === WireType.Varint) nanos = duration.int32();
        else duration.skip(w, f);
      }
      delayMs = seconds * 1000 + Math.round(nanos / 1e6);
    } else {
      reader.skip(wireType, field);
    }
  }
  return delayMs;
}
