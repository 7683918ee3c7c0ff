"""Fake Amazon Bedrock Runtime (Converse / ConverseStream) and a fake STS, on loopback.

    fake = FakeBedrock(region="us-east-1")
    fake.add_key("AKIDEXAMPLE", "secret")          # the credentials it accepts (SigV4 is checked)
    with fake.serve() as base_url: ...              # POST {base}/model/{modelId}/converse-stream

What it checks, as Bedrock would, before anything else: a SigV4 `Authorization` header (algorithm
`AWS4-HMAC-SHA256`, a credential scope `<key>/<date>/<region>/bedrock/aws4_request` for the configured
region, `host` and `x-amz-date` among the signed headers, an `X-Amz-Security-Token` for temporary keys)
whose signature it recomputes with botocore's SigV4 from the key's secret and the request as received
(raw path, headers, body); or a Bedrock API key as `Authorization: Bearer`. Then the Converse body (the
shapes of botocore's `bedrock-runtime` model), answering `ValidationException` as Bedrock does.

Streams are `application/vnd.amazon.eventstream`, encoded here (botocore only decodes): each message
is a prelude (total length, headers length, the prelude's CRC32), headers (name, type 7 = string,
value), the JSON payload and the message's CRC32, big-endian. Events carry `:event-type`,
`:content-type` and `:message-type: event`; a transcript item `{"exception": "throttlingException"}`
is sent as `:message-type: exception`. Like Bedrock, each event payload has a `p` padding field.

Transcripts: ``tests/transcripts/bedrock/`` (``{"event": <type>, "data": <payload>}`` items). The scenario
is taken from the model id's ``scenario-<name>`` part (``us.anthropic.scenario-text``).

`FakeSts` answers AssumeRoleWithWebIdentity (the Query protocol: a form POST, an XML answer) and
registers the temporary keys it issues with a `FakeBedrock`.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import struct
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.server import serve_app
from tests.fakes.transcripts import FakeUpstream, dumps, word_set

ERROR_NAMES = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    413: "ValidationException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
DEFAULT_MESSAGES = {
    "ValidationException": "Malformed input request, please reformat your input and try again.",
    "UnrecognizedClientException": "The security token included in the request is invalid.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ResourceNotFoundException": "Could not resolve the foundation model from the provided model identifier.",
    "ModelTimeoutException": "Model has timed out in processing the request.",
    "ModelErrorException": "The system encountered an unexpected error during processing.",
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "InternalServerException": "The server encountered an internal error.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
}
TOP_LEVEL = word_set(
    "messages system inferenceConfig toolConfig guardrailConfig additionalModelRequestFields "
    "promptVariables additionalModelResponseFieldPaths requestMetadata performanceConfig serviceTier "
    "outputConfig"
)
BLOCKS = word_set(
    "text image document video audio toolUse toolResult guardContent cachePoint reasoningContent"
)
IMAGE_FORMATS = word_set("png jpeg gif webp")
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/"
    r"aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


class Invalid(Exception):
    pass


def _req(cond: bool, message: str) -> None:
    if not cond:
        raise Invalid(message)


# ------------------------------------------------------------------------------------ event-stream encoding
def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + struct.pack(">BH", 7, len(v)) + v


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One `vnd.amazon.eventstream` message: prelude + its CRC, headers, payload, message CRC."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + head + payload
    return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)


def frame(item: dict[str, Any]) -> bytes:
    if "exception" in item:
        headers = {":exception-type": item["exception"], ":content-type": "application/json"}
        headers[":message-type"] = "exception"
        return encode_message(headers, dumps(item["data"]).encode())
    payload = {**item["data"], "p": "abcdefghijklmnopqrstuvwxyzABCDEF"[: 1 + len(item["event"])]}
    headers = {":event-type": item["event"], ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, dumps(payload).encode())


# ------------------------------------------------------------------------------------ request validation
def _validate_block(loc: str, block: Any, role: str) -> None:
    _req(isinstance(block, dict) and len(block) == 1, f"{loc}: a content block has exactly one member")
    ((kind, value),) = block.items()
    _req(kind in BLOCKS, f"{loc}: unknown content block `{kind}`")
    if kind == "text":
        _req(
            isinstance(value, str) and value.strip() != "",
            f"{loc}.text: text content blocks must be non-empty",
        )
    elif kind == "image":
        _req(value.get("format") in IMAGE_FORMATS, f"{loc}.image.format: must be png, jpeg, gif or webp")
        src = value.get("source") or {}
        if "bytes" in src:
            try:
                base64.b64decode(src["bytes"], validate=True)
            except (binascii.Error, TypeError) as e:
                raise Invalid(f"{loc}.image.source.bytes: invalid base64") from e
        else:
            _req("s3Location" in src, f"{loc}.image.source: bytes or s3Location required")
    elif kind == "toolUse":
        _req(role == "assistant", f"{loc}: toolUse blocks can only be in assistant messages")
        _req(all(isinstance(value.get(k), str) for k in ("toolUseId", "name")), f"{loc}.toolUse: id and name")
        _req(isinstance(value.get("input"), dict), f"{loc}.toolUse.input: must be an object")
    elif kind == "toolResult":
        _req(role == "user", f"{loc}: toolResult blocks can only be in user messages")
        _req(isinstance(value.get("toolUseId"), str), f"{loc}.toolResult.toolUseId: required")
        _req(isinstance(value.get("content"), list), f"{loc}.toolResult.content: required")
    elif kind == "reasoningContent":
        _req(role == "assistant", f"{loc}: reasoningContent blocks can only be in assistant messages")
        text = value.get("reasoningText")
        if text is not None:
            _req(isinstance(text.get("signature"), str), f"{loc}.reasoningContent: signature required")


def validate(body: Any) -> None:
    _req(isinstance(body, dict), "Malformed input request")
    for key in body:
        _req(key in TOP_LEVEL, f'Unknown parameter in input: "{key}"')
    messages = body.get("messages")
    _req(isinstance(messages, list) and messages, "A conversation must start with a user message.")
    _req(messages[0].get("role") == "user", "A conversation must start with a user message.")
    tool_blocks = False
    for i, msg in enumerate(messages):
        role = msg.get("role")
        _req(role in ("user", "assistant"), f"messages.{i}.role: must be user or assistant")
        if i:
            _req(
                role != messages[i - 1]["role"],
                "A conversation must alternate between user and assistant roles.",
            )
        content = msg.get("content")
        _req(isinstance(content, list) and content, f"messages.{i}.content: must not be empty")
        for j, block in enumerate(content):
            _validate_block(f"messages.{i}.content.{j}", block, role)
            tool_blocks = tool_blocks or "toolUse" in block or "toolResult" in block
    for i, block in enumerate(body.get("system") or []):
        _req(isinstance(block, dict) and len(block) == 1, f"system.{i}: one member")
    config = body.get("toolConfig")
    if tool_blocks:
        _req(
            config is not None,
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        )
    if config is not None:
        tools = config.get("tools")
        _req(isinstance(tools, list) and tools, "toolConfig.tools: must not be empty")
        for i, tool in enumerate(tools):
            spec = tool.get("toolSpec") or {}
            _req(
                re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", str(spec.get("name", ""))) is not None,
                f"toolConfig.tools.{i}.toolSpec.name: invalid",
            )
            _req(
                isinstance((spec.get("inputSchema") or {}).get("json"), dict),
                f"toolConfig.tools.{i}: inputSchema.json",
            )
    inference = body.get("inferenceConfig") or {}
    if "maxTokens" in inference:
        _req(isinstance(inference["maxTokens"], int) and inference["maxTokens"] >= 1, "maxTokens: >= 1")
    fmt = (body.get("outputConfig") or {}).get("textFormat")
    if fmt is not None:
        schema = ((fmt.get("structure") or {}).get("jsonSchema") or {}).get("schema")
        _req(isinstance(schema, str), "outputConfig.textFormat.structure.jsonSchema.schema: a JSON string")
        json.loads(schema)


def error_response(status: int, name: str | None = None, message: str | None = None) -> Response:
    """An error as Bedrock (REST-JSON) shapes it: the name in `x-amzn-ErrorType`, `{"message"}`."""
    name = name or ERROR_NAMES.get(status, "InternalServerException")
    headers = {
        "x-amzn-errortype": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-requestid": str(uuid.uuid4()),
    }
    body = {"message": message or DEFAULT_MESSAGES.get(name, name)}
    return JSONResponse(body, status_code=status, headers=headers)


# ------------------------------------------------------------------------------------ the fake
@dataclass
class SignedBy:
    """What a request's SigV4 header said."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    token: str | None


@dataclass
class FakeBedrock(FakeUpstream):
    provider = "bedrock"

    region: str = "us-east-1"
    # access key id -> (secret, session token or None): the credentials Bedrock accepts.
    keys: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    signed: list[SignedBy] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # the model id of each request, decoded

    def add_key(self, access_key: str, secret: str, token: str | None = None) -> None:
        self.keys[access_key] = (secret, token)

    def reset(self) -> None:
        super().reset()
        self.signed.clear()
        self.models.clear()

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/model/{model_id:path}/converse-stream", self._converse, methods=["POST"]),
                Route("/model/{model_id:path}/converse", self._converse, methods=["POST"]),
            ]
        )

    def pick_scenario(self, model: Any) -> str:
        if self.scenario:
            return self.scenario
        _, sep, name = str(model).partition("scenario-")
        return name if sep else "text"

    def _check_auth(self, request: Request, raw: bytes) -> Response | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return None if auth[7:] == self.api_key else error_response(403, "UnrecognizedClientException")
        m = _AUTH.match(auth)
        if m is None:
            return error_response(
                403, "IncompleteSignatureException", "Authorization header requires a SigV4 signature."
            )
        signed = m["signed"].split(";")
        by = SignedBy(
            m["key"], m["date"], m["region"], m["service"], signed, headers.get("x-amz-security-token")
        )
        self.signed.append(by)
        if m["key"] not in self.keys:
            return error_response(403, "UnrecognizedClientException")
        secret, token = self.keys[m["key"]]
        amz_date = headers.get("x-amz-date", "")
        if (
            m["service"] != "bedrock"
            or m["region"] != self.region
            or not {"host", "x-amz-date"} <= set(signed)
            or not amz_date.startswith(m["date"])
            or (token is not None and ("x-amz-security-token" not in signed or by.token != token))
        ):
            return error_response(
                403, "InvalidSignatureException", f"Credential should be scoped correctly: {auth}"
            )
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        if abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) > 300:
            return error_response(403, "InvalidSignatureException", "Signature expired")
        # Recompute the signature with botocore over the request exactly as it arrived.
        raw_path = request.scope["raw_path"].decode()
        query = request.scope["query_string"].decode()
        url = f"http://{headers['host']}{raw_path}" + (f"?{query}" if query else "")
        check = AWSRequest(method=request.method, url=url, data=raw, headers={h: headers[h] for h in signed})
        check.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(m["key"], secret, token), "bedrock", self.region)
        expected = signer.signature(signer.string_to_sign(check, signer.canonical_request(check)), check)
        if expected != m["sig"]:
            return error_response(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None

    async def _converse(self, request: Request) -> Response:
        rec = await self.record(request)
        refused = self._check_auth(request, rec.raw)
        if refused is not None:
            return refused
        injected = self.take_error()
        if injected:
            if injected.body is not None:
                return JSONResponse(injected.body, status_code=injected.status)
            return error_response(injected.status, message=injected.message)
        raw_model = request.scope["raw_path"].decode().split("/")[2]
        model = urllib.parse.unquote(raw_model)
        self.models.append(model)
        try:
            validate(rec.body)
        except (Invalid, ValueError) as exc:
            return error_response(400, "ValidationException", str(exc))
        transcript = self.transcript(self.pick_scenario(model))
        if transcript is None:
            return error_response(404, "ResourceNotFoundException")
        rid = {"x-amzn-requestid": str(uuid.uuid4())}
        if request.url.path.endswith("/converse-stream"):
            return StreamingResponse(
                self.events(transcript["stream"], frame),
                media_type="application/vnd.amazon.eventstream",
                headers=rid,
            )
        return JSONResponse(fold(transcript["stream"]), headers=rid)


def fold(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The Converse (unary) answer a stream transcript adds up to."""
    blocks: dict[int, dict[str, Any]] = {}
    out: dict[str, Any] = {"metrics": {"latencyMs": 0}}
    for item in items:
        event, data = item.get("event"), item.get("data") or {}
        index = data.get("contentBlockIndex", 0)
        if event == "contentBlockStart" and "toolUse" in data["start"]:
            blocks[index] = {"toolUse": {**data["start"]["toolUse"], "input": ""}}
        elif event == "contentBlockDelta":
            delta = data["delta"]
            if "text" in delta:
                blocks.setdefault(index, {"text": ""})["text"] += delta["text"]
            elif "toolUse" in delta:
                blocks[index]["toolUse"]["input"] += delta["toolUse"]["input"]
            elif "reasoningContent" in delta:
                rc = blocks.setdefault(index, {"reasoningContent": {"reasoningText": {"text": ""}}})
                text = rc["reasoningContent"]["reasoningText"]
                text["text"] += delta["reasoningContent"].get("text", "")
                if "signature" in delta["reasoningContent"]:
                    text["signature"] = delta["reasoningContent"]["signature"]
        elif event == "messageStop":
            out["stopReason"] = data["stopReason"]
        elif event == "metadata":
            out["usage"] = data["usage"]
    for block in blocks.values():
        if "toolUse" in block:
            block["toolUse"]["input"] = json.loads(block["toolUse"]["input"] or "{}")
    out["output"] = {"message": {"role": "assistant", "content": [blocks[i] for i in sorted(blocks)]}}
    return out


# ------------------------------------------------------------------------------------ STS
@dataclass
class FakeSts:
    """AssumeRoleWithWebIdentity on loopback: checks the role and the token, issues temporary keys
    valid for `lifetime` seconds, and lets `bedrock` accept them."""

    bedrock: FakeBedrock
    role_arn: str
    token: str
    lifetime: int = 3600
    calls: list[dict[str, str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        self.calls.append(form)
        if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("RoleArn") != self.role_arn:
            response = self._error(
                403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            )
        elif form.get("WebIdentityToken", "").strip() != self.token:
            response = self._error(
                400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider"
            )
        else:
            response = self._credentials(form.get("RoleSessionName", ""))
        await response(scope, receive, send)

    def _error(self, status: int, code: str, message: str) -> Response:
        xml = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return Response(xml, status_code=status, media_type="text/xml")

    def _credentials(self, session_name: str) -> Response:
        key = f"ASIA{uuid.uuid4().hex[:16].upper()}"
        secret, token = f"sts-secret-{uuid.uuid4().hex}", f"sts-token-{uuid.uuid4().hex}"
        self.issued.append(key)
        self.bedrock.add_key(key, secret, token)
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.lifetime)
        xml = (
            '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<AssumeRoleWithWebIdentityResult>"
            f"<SubjectFromWebIdentityToken>system:serviceaccount:default:gateway</SubjectFromWebIdentityToken>"
            f"<AssumedRoleUser><Arn>{self.role_arn}/{session_name}</Arn>"
            f"<AssumedRoleId>AROAEXAMPLE:{session_name}</AssumedRoleId></AssumedRoleUser>"
            f"<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken>{token}</SessionToken>"
            f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration></Credentials>"
            "<Audience>sts.amazonaws.com</Audience><Provider>oidc.eks.amazonaws.com</Provider>"
            "</AssumeRoleWithWebIdentityResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</AssumeRoleWithWebIdentityResponse>"
        )
        return Response(xml, media_type="text/xml")

    def serve(self) -> Any:
        return serve_app(self)
