"""One in-process gateway (real sockets on loopback) in front of every fake upstream, for the contract
tests that hold what it emits to both specs. The deployments are the provider suite's
(tests/providers/conftest.py), plus `sparse-*`: an OpenAI-compatible Responses server that answers
with only the fields it must (tests/contract/sparse_upstream.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.contract.sparse_upstream import SparseResponses
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.chat_upstream import FakeChat
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import make_openai_app
from tests.fakes.server import serve_app
from tests.providers.conftest import KEY, AzureFront, gateway_config
from tests.support.clients import openai_client, rest_client
from tests.support.inprocess import InProcessGateway
from tests.support.spec import BothSpecs


@dataclass
class ContractEnv:
    gw: InProcessGateway
    sparse: SparseResponses


@pytest.fixture(scope="session")
def contract_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContractEnv]:
    oa = make_openai_app(KEY)
    azure = AzureFront(oa)
    anth, gem, chat = FakeAnthropic(api_key=KEY), FakeGemini(api_key=KEY), FakeChat(api_key=KEY)
    sparse = SparseResponses()
    tmp = tmp_path_factory.mktemp("contract")
    with (
        serve_app(oa) as oa_base,
        serve_app(azure) as az_base,
        serve_app(sparse) as sparse_base,
        anth.serve() as anth_base,
        gem.serve() as gem_base,
        chat.serve() as chat_base,
    ):
        oa.base_url = oa_base
        bases = {"openai": oa_base, "azure": az_base, "chat": chat_base, "anthropic": anth_base}
        bases["gemini"] = gem_base
        cfg = gateway_config(bases, tmp / "responses.db")
        cfg["model_list"].append(
            {
                "model_name": "sparse-*",
                "litellm_params": {"model": "openai/*", "api_base": f"{sparse_base}/v1", "api_key": KEY},
            }
        )
        path = tmp / "gateway.json"
        path.write_text(json.dumps(cfg))
        gw = InProcessGateway(path, grace_seconds=1)
        try:
            yield ContractEnv(gw, sparse)
        finally:
            gw.close()


@pytest.fixture(scope="session")
def http(contract_env: ContractEnv) -> Iterator[httpx.Client]:
    with rest_client(contract_env.gw) as c:
        yield c


@pytest.fixture(scope="session")
def sdk(contract_env: ContractEnv) -> Iterator[openai.OpenAI]:
    with openai_client(contract_env.gw) as c:
        yield c


@pytest.fixture(scope="session")
def specs() -> BothSpecs:
    return BothSpecs()
