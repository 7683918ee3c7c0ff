// A thin helper over the generated protobuf-es stubs and Connect's gRPC transport for Node:
// `createClient({ baseUrl, apiKey })` gives promise-returning methods for every RPC, event streams
// that are `AsyncIterable`s with `finalResponse()`, and `GatewayError`s carrying the ErrorInfo reason.
import type * as http2 from "node:http2";

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient as createConnectClient, type CallOptions, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import type { ResponseErrorEvent, ResponseStreamEvent } from "./gen/responses_gateway/v1/events_pb.js";
import type { ItemSchema } from "./gen/responses_gateway/v1/items_pb.js";
import { ModelsService, type ListModelsResponse } from "./gen/responses_gateway/v1/models_pb.js";
import { CreateResponseRequestSchema, type CreateResponseRequest, type InputSchema } from "./gen/responses_gateway/v1/request_pb.js";
import type { Response } from "./gen/responses_gateway/v1/response_pb.js";
import {
  ListOrder,
  ResponsesService,
  type CompactResponseRequestSchema,
  type CompactResponseResponse,
  type CountInputTokensRequestSchema,
  type CountInputTokensResponse,
  type DeleteResponseResponse,
  type ListInputItemsResponse,
} from "./gen/responses_gateway/v1/responses_service_pb.js";
import type { Include } from "./gen/responses_gateway/v1/request_pb.js";
import { Code, GatewayError, toGatewayError } from "./errors.js";

export { Code, GatewayError, codeName, decodeErrorInfo, decodeRetryDelayMs, toGatewayError } from "./errors.js";
export type { ErrorInfo, GatewayErrorInit } from "./errors.js";
export * from "./gen/responses_gateway/v1/annotations_pb.js";
export * from "./gen/responses_gateway/v1/content_pb.js";
export * from "./gen/responses_gateway/v1/events_pb.js";
export * from "./gen/responses_gateway/v1/items_pb.js";
export * from "./gen/responses_gateway/v1/models_pb.js";
export * from "./gen/responses_gateway/v1/request_pb.js";
export * from "./gen/responses_gateway/v1/response_pb.js";
export * from "./gen/responses_gateway/v1/responses_service_pb.js";
export * from "./gen/responses_gateway/v1/tools_pb.js";

// ------------------------------------------------------------------------------------------ options
export interface ClientOptions {
  /**
   * The gateway's gRPC address: `http://host:port` (plaintext HTTP/2), `https://host:port` (TLS),
   * or a bare `host:port` (TLS unless `insecure` or `tls: false`).
   */
  baseUrl: string;
  /** Sent as `authorization: Bearer <apiKey>` on every call. */
  apiKey?: string;
  /** TLS: false for plaintext, or Node http2/tls options (`ca`, `cert`, `key`, `servername`...). */
  tls?: boolean | http2.SecureClientSessionOptions;
  /** Plaintext HTTP/2 for a bare `host:port` (same as `tls: false`). */
  insecure?: boolean;
  /** Default deadline of every call, in milliseconds (none by default). */
  timeoutMs?: number;
  /** Extra headers (gRPC metadata) sent on every call. */
  headers?: Record<string, string>;
  /** More Connect interceptors, run after the one setting the headers. */
  interceptors?: Interceptor[];
  /** Use this transport instead of building one (`baseUrl`, `tls`, `insecure` are then ignored). */
  transport?: Transport;
}

/** Per-call options: a cancellation signal, a deadline and extra headers. */
export interface RequestOptions {
  /** Aborting it cancels the call (it then fails with a GatewayError of code CANCELLED). */
  signal?: AbortSignal;
  /** Deadline of this call in milliseconds, overriding the client's `timeoutMs`. */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

type ItemInit = MessageInitShape<typeof ItemSchema>;
type InputInit = MessageInitShape<typeof InputSchema>;

/** A CreateResponseRequest, with `input` also accepted as a string (one user message) or a list of items. */
export type CreateRequest = Omit<MessageInitShape<typeof CreateResponseRequestSchema>, "input"> & {
  input?: string | ItemInit[] | InputInit;
};

export type Order = "asc" | "desc" | ListOrder;

export interface InputItemsOptions extends RequestOptions {
  /** List items after this item id. */
  after?: string;
  /** Page size (1-100). */
  limit?: number;
  order?: Order;
  include?: Include[];
}

// ------------------------------------------------------------------------------------------- stream
/** The Response carried by a terminal event (completed / failed / incomplete), else undefined. */
export function terminalResponse(event: ResponseStreamEvent): Response | undefined {
  switch (event.kind.case) {
    case "responseCompleted":
    case "responseFailed":
    case "responseIncomplete":
      return event.kind.value.response;
    default:
      return undefined;
  }
}

/** The text of a `response.output_text.delta` event, else undefined. */
export function textDelta(event: ResponseStreamEvent): string | undefined {
  return event.kind.case === "responseOutputTextDelta" ? event.kind.value.delta : undefined;
}

/** The concatenated `output_text` parts of a response's output messages (as the OpenAI SDK's `output_text`). */
export function outputText(response: Response): string {
  if (response.outputText !== undefined) return response.outputText;
  const texts: string[] = [];
  for (const item of response.output) {
    if (item.kind.case !== "message") continue;
    const content = item.kind.value.content?.kind;
    if (content?.case === "text") {
      texts.push(content.value);
    } else if (content?.case === "parts") {
      for (const part of content.value.parts) {
        if (part.kind.case === "outputText") texts.push(part.kind.value.text);
      }
    }
  }
  return texts.join("");
}

/**
 * The events of a streamed response: iterate it once with `for await`; `finalResponse()` gives the
 * terminal Response (draining the stream if it was not iterated). Leaving the loop early, `abort()`,
 * or aborting the call's signal cancels the RPC.
 */
export class ResponseStream implements AsyncIterable<ResponseStreamEvent> {
  #open: (signal: AbortSignal) => AsyncIterable<ResponseStreamEvent>;
  #controller = new AbortController();
  #started = false;
  #completed = false;
  #final: Response | undefined;
  #errorEvent: ResponseErrorEvent | undefined;
  #failure: GatewayError | undefined;
  #done: Promise<void>;
  #markDone!: () => void;

  /** @internal */
  constructor(open: (signal: AbortSignal) => AsyncIterable<ResponseStreamEvent>, signal?: AbortSignal) {
    this.#open = open;
    this.#done = new Promise((resolve) => (this.#markDone = resolve));
    if (signal?.aborted) {
      this.#controller.abort(signal.reason);
    } else if (signal) {
      const onAbort = () => this.#controller.abort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      void this.#done.then(() => signal.removeEventListener("abort", onAbort));
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ResponseStreamEvent> {
    if (this.#started) throw new Error("a ResponseStream can be iterated only once");
    this.#started = true;
    try {
      for await (const event of this.#open(this.#controller.signal)) {
        const response = terminalResponse(event);
        if (response !== undefined) this.#final = response;
        else if (event.kind.case === "error") this.#errorEvent = event.kind.value;
        yield event;
      }
      this.#completed = true;
    } catch (err) {
      this.#failure = toGatewayError(err);
      throw this.#failure;
    } finally {
      if (!this.#completed && this.#failure === undefined) this.#controller.abort(); // left the loop early
      this.#markDone();
    }
  }

  /** Cancels the RPC; the iteration then fails with a GatewayError of code CANCELLED. */
  abort(reason?: unknown): void {
    this.#controller.abort(reason);
  }

  /**
   * The terminal Response (`response.completed`, `.failed` or `.incomplete`). Drains the stream first
   * if it was not iterated, or waits for the running iteration to end. Throws a GatewayError when the
   * stream failed, ended on an `error` event, or ended without a terminal event.
   */
  async finalResponse(): Promise<Response> {
    if (!this.#started) {
      try {
        for await (const _ of this) {
          // drain
        }
      } catch {
        // kept in #failure
      }
    }
    await this.#done;
    if (this.#final !== undefined) return this.#final;
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#errorEvent !== undefined) {
      const event = this.#errorEvent;
      const metadata: Record<string, string> = {};
      if (event.param !== undefined) metadata["param"] = event.param;
      if (event.code !== undefined) metadata["code"] = event.code;
      throw new GatewayError(event.message, { code: Code.Unknown, reason: event.code?.toUpperCase(), metadata });
    }
    if (!this.#completed) throw new GatewayError("the stream was cancelled", { code: Code.Canceled });
    throw new GatewayError("the stream ended without a terminal event", { code: Code.Unknown });
  }
}

// ------------------------------------------------------------------------------------------- client
export interface GatewayClient {
  /** Creates a response (CreateResponse). */
  create(request: CreateRequest, options?: RequestOptions): Promise<Response>;
  /** Creates a response and streams its events (StreamResponse). */
  stream(request: CreateRequest, options?: RequestOptions): ResponseStream;
  /** Retrieves a stored response (GetResponse). */
  retrieve(responseId: string, options?: RequestOptions & { include?: Include[] }): Promise<Response>;
  /** Replays a background response's events after `startingAfter` (StreamGetResponse). */
  streamRetrieve(responseId: string, startingAfter?: number | bigint, options?: RequestOptions): ResponseStream;
  /** Deletes a stored response (DeleteResponse). */
  delete(responseId: string, options?: RequestOptions): Promise<DeleteResponseResponse>;
  /** Cancels a background response (CancelResponse). */
  cancel(responseId: string, options?: RequestOptions): Promise<Response>;
  /** Lists a response's input items (ListInputItems). */
  inputItems(responseId: string, options?: InputItemsOptions): Promise<ListInputItemsResponse>;
  /** Compacts a conversation (CompactResponse). */
  compact(request: MessageInitShape<typeof CompactResponseRequestSchema>, options?: RequestOptions): Promise<CompactResponseResponse>;
  /** Counts the input tokens of a would-be request (CountInputTokens). */
  countInputTokens(request: MessageInitShape<typeof CountInputTokensRequestSchema>, options?: RequestOptions): Promise<CountInputTokensResponse>;
  /** Lists the models the gateway routes to (ModelsService.ListModels). */
  listModels(options?: RequestOptions): Promise<ListModelsResponse>;
  /** The generated Connect clients, for anything the helper does not cover. */
  readonly raw: { responses: Client<typeof ResponsesService>; models: Client<typeof ModelsService> };
  /** Closes the HTTP/2 connection (calls in flight fail). Idle connections do not keep Node alive anyway. */
  close(): void;
}

function toUrl(options: ClientOptions): { url: string; secure: boolean } {
  const plaintext = options.insecure === true || options.tls === false;
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(options.baseUrl)
    ? options.baseUrl
    : `${plaintext ? "http" : "https"}://${options.baseUrl}`;
  const secure = new URL(url).protocol === "https:";
  if (secure && plaintext) throw new TypeError(`baseUrl ${url} is https but insecure / tls: false was asked`);
  return { url, secure };
}

function toInput(input: CreateRequest["input"]): InputInit | undefined {
  if (input === undefined) return undefined;
  if (typeof input === "string") return { kind: { case: "text", value: input } };
  if (Array.isArray(input)) return { kind: { case: "items", value: { items: input } } };
  return input;
}

function toRequest(request: CreateRequest): CreateResponseRequest {
  const { input, ...rest } = request;
  return create(CreateResponseRequestSchema, { ...rest, input: toInput(input) } as MessageInitShape<typeof CreateResponseRequestSchema>);
}

function toOrder(order: Order | undefined): ListOrder | undefined {
  if (order === undefined || typeof order === "number") return order;
  if (order === "asc") return ListOrder.ASC;
  if (order === "desc") return ListOrder.DESC;
  throw new TypeError(`order must be "asc" or "desc", not ${JSON.stringify(order)}`);
}

function callOptions(options: RequestOptions | undefined): CallOptions {
  return { signal: options?.signal, timeoutMs: options?.timeoutMs, headers: options?.headers };
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toGatewayError(err);
  }
}

/** A client of the Responses Gateway over gRPC (HTTP/2). */
export function createClient(options: ClientOptions): GatewayClient {
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey !== undefined) headers["authorization"] = `Bearer ${options.apiKey}`;
  const setHeaders: Interceptor = (next) => (req) => {
    for (const [name, value] of Object.entries(headers)) {
      if (!req.header.has(name)) req.header.set(name, value);
    }
    return next(req);
  };
  const interceptors = [setHeaders, ...(options.interceptors ?? [])];

  let sessionManager: Http2SessionManager | undefined;
  let transport = options.transport;
  if (transport === undefined) {
    const { url, secure } = toUrl(options);
    const nodeOptions = secure && typeof options.tls === "object" ? options.tls : {};
    sessionManager = new Http2SessionManager(url, {}, nodeOptions);
    transport = createGrpcTransport({ baseUrl: url, sessionManager, interceptors, defaultTimeoutMs: options.timeoutMs });
  } else {
    // A caller-built transport: add the headers and default deadline to each call ourselves.
    const inner = transport;
    const withHeaders = (header: Parameters<Transport["unary"]>[3]): Headers => {
      const h = new Headers(header);
      for (const [name, value] of Object.entries(headers)) if (!h.has(name)) h.set(name, value);
      return h;
    };
    transport = {
      unary: (method, signal, timeoutMs, header, input, contextValues) =>
        inner.unary(method, signal, timeoutMs ?? options.timeoutMs, withHeaders(header), input, contextValues),
      stream: (method, signal, timeoutMs, header, input, contextValues) =>
        inner.stream(method, signal, timeoutMs ?? options.timeoutMs, withHeaders(header), input, contextValues),
    };
  }

  const responses = createConnectClient(ResponsesService, transport);
  const models = createConnectClient(ModelsService, transport);

  return {
    raw: { responses, models },
    create: (request, opts) => call(() => responses.createResponse(toRequest(request), callOptions(opts))),
    stream: (request, opts) =>
      new ResponseStream(
        (signal) => responses.streamResponse(toRequest(request), { ...callOptions(opts), signal }),
        opts?.signal,
      ),
    retrieve: (responseId, opts) =>
      call(() => responses.getResponse({ responseId, include: opts?.include ?? [] }, callOptions(opts))),
    streamRetrieve: (responseId, startingAfter, opts) =>
      new ResponseStream(
        (signal) =>
          responses.streamGetResponse(
            { responseId, stream: true, startingAfter: startingAfter === undefined ? undefined : BigInt(startingAfter) },
            { ...callOptions(opts), signal },
          ),
        opts?.signal,
      ),
    delete: (responseId, opts) => call(() => responses.deleteResponse({ responseId }, callOptions(opts))),
    cancel: (responseId, opts) => call(() => responses.cancelResponse({ responseId }, callOptions(opts))),
    inputItems: (responseId, opts) =>
      call(() =>
        responses.listInputItems(
          {
            responseId,
            after: opts?.after,
            limit: opts?.limit === undefined ? undefined : BigInt(opts.limit),
            order: toOrder(opts?.order),
            include: opts?.include ?? [],
          },
          callOptions(opts),
        ),
      ),
    compact: (request, opts) => call(() => responses.compactResponse(request, callOptions(opts))),
    countInputTokens: (request, opts) => call(() => responses.countInputTokens(request, callOptions(opts))),
    listModels: (opts) => call(() => models.listModels({}, callOptions(opts))),
    close: () => sessionManager?.abort(),
  };
}
