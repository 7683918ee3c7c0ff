"""The gRPC AdminService: each method is platform/keys.py's operation, the message converted to the
JSON the REST admin API takes (the field names are the same) and the answer back. The interceptor
(auth.py) lets only the master key through."""

from __future__ import annotations

from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from responses_gateway.domain.context import CallContext
from responses_gateway.platform.keys import KeyAdmin
from responses_gateway.transport.grpc.servicer import unary
from responses_gateway.v1 import admin_pb2 as pb
from responses_gateway.v1 import admin_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
M = TypeVar("M", bound=Message)


def _json(message: Message) -> dict[str, Any]:
    """The set fields, by their proto (= LiteLLM) names; int64 as numbers, as REST sends them."""
    body = json_format.MessageToDict(message, preserving_proto_field_name=True)
    for name, value in body.items():
        if isinstance(value, str) and name in ("rpm_limit", "tpm_limit"):
            body[name] = int(value)
    return body


def _message(body: dict[str, Any], into: M) -> M:
    clean = {k: v for k, v in body.items() if v is not None}
    return json_format.ParseDict(clean, into, ignore_unknown_fields=True)


def _info(body: dict[str, Any]) -> pb.KeyInfo:
    return _message(body, pb.KeyInfo())


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, admin: KeyAdmin) -> None:
        self.admin = admin

    async def GenerateKey(self, request: pb.GenerateKeyRequest, context: Context) -> pb.GenerateKeyResponse:
        async def op(r: pb.GenerateKeyRequest, _: CallContext) -> pb.GenerateKeyResponse:
            body = await self.admin.generate(_json(r))
            return pb.GenerateKeyResponse(key=body.pop("key"), info=_info(body))

        return await unary(context, request, op)

    async def GetKeyInfo(self, request: pb.GetKeyInfoRequest, context: Context) -> pb.GetKeyInfoResponse:
        async def op(r: pb.GetKeyInfoRequest, _: CallContext) -> pb.GetKeyInfoResponse:
            body = await self.admin.info(r.key)
            return pb.GetKeyInfoResponse(key=body["key"], info=_info(body["info"]))

        return await unary(context, request, op)

    async def UpdateKey(self, request: pb.UpdateKeyRequest, context: Context) -> pb.UpdateKeyResponse:
        async def op(r: pb.UpdateKeyRequest, _: CallContext) -> pb.UpdateKeyResponse:
            body = _json(r)
            if not r.models:
                body.pop("models", None)  # an empty repeated field is "unchanged"
            return pb.UpdateKeyResponse(info=_info(await self.admin.update(body)))

        return await unary(context, request, op)

    async def DeleteKeys(self, request: pb.DeleteKeysRequest, context: Context) -> pb.DeleteKeysResponse:
        async def op(r: pb.DeleteKeysRequest, _: CallContext) -> pb.DeleteKeysResponse:
            body = await self.admin.delete({"keys": list(r.keys), "key_aliases": list(r.key_aliases)})
            return pb.DeleteKeysResponse(deleted_keys=body["deleted_keys"])

        return await unary(context, request, op)

    async def ListKeys(self, request: pb.ListKeysRequest, context: Context) -> pb.ListKeysResponse:
        async def op(r: pb.ListKeysRequest, _: CallContext) -> pb.ListKeysResponse:
            query = {"return_full_object": "true"}
            if r.page:
                query["page"] = str(r.page)
            if r.size:
                query["size"] = str(r.size)
            for name in ("user_id", "team_id"):
                if r.HasField(name):
                    query[name] = getattr(r, name)
            body = await self.admin.list(query)
            return pb.ListKeysResponse(
                keys=[_info(k) for k in body["keys"]],
                total_count=body["total_count"],
                current_page=body["current_page"],
                total_pages=body["total_pages"],
            )

        return await unary(context, request, op)

    async def GetSpendReport(
        self, request: pb.GetSpendReportRequest, context: Context
    ) -> pb.GetSpendReportResponse:
        async def op(r: pb.GetSpendReportRequest, _: CallContext) -> pb.GetSpendReportResponse:
            query = {k: v for k, v in _json(r).items() if isinstance(v, str) and v}
            return _message(await self.admin.spend_report(query), pb.GetSpendReportResponse())

        return await unary(context, request, op)
