"""The clients the suites talk to a gateway with: the official `openai` SDK (strict validation of what
it reads), a plain httpx client on `/v1`, and a gRPC ResponsesService stub."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

import grpc
import httpx
import openai

from responses_gateway.v1 import responses_service_pb2_grpc


class Served(Protocol):
    @property
    def http_base(self) -> str: ...

    @property
    def grpc_target(self) -> str: ...


@contextlib.contextmanager
def openai_client(gw: Served, api_key: str = "sk-client") -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{gw.http_base}/v1",
        api_key=api_key,
        max_retries=0,
        timeout=30,
        _strict_response_validation=True,
    ) as client:
        yield client


@contextlib.contextmanager
def rest_client(gw: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{gw.http_base}/v1", timeout=30) as client:
        yield client


@contextlib.contextmanager
def responses_stub(gw: Served) -> Iterator[responses_service_pb2_grpc.ResponsesServiceStub]:
    with grpc.insecure_channel(gw.grpc_target) as channel:
        yield responses_service_pb2_grpc.ResponsesServiceStub(channel)
