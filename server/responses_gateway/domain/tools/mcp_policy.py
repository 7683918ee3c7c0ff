"""Which MCP server a request's `mcp` tool reaches, and whether it may.

A client-supplied `server_url` makes the gateway open a connection from inside the cluster, so it must
match `gateway_settings.mcp.allowed_server_urls`, and its host must not resolve to a link-local or
cloud metadata address (checked on every IP the name resolves to, whatever the patterns say).
Registered servers (`mcp_servers:`) are named with `litellm_proxy` / `litellm_proxy/mcp/<name>`:
the operator configured them, so they are always allowed, and their URL and headers never reach the
client (the request only ever shows the `litellm_proxy` name).
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from responses_gateway.config.models import McpServerConfig, McpSettings
from responses_gateway.errors import GatewayError, Reason, echo
from responses_gateway.v1 import tools_pb2

REGISTERED = "litellm_proxy"
_ONE_REGISTERED = "litellm_proxy/mcp/"

# Metadata services that are not link-local (those are refused as a class): AWS over IPv6, Alibaba,
# Azure's wire server; and the names Google's resolves by.
_METADATA_IPS = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})


@dataclass(frozen=True)
class Target:
    """One MCP server as the gateway connects to it."""

    url: str
    transport: str  # "http" (streamable HTTP) or "sse"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    registered: str = ""  # the mcp_servers name, for registered servers


def _refused_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip.is_unspecified or ip in _METADATA_IPS


def _refuse(url: str, param: str, why: str) -> GatewayError:
    return GatewayError(
        Reason.INVALID_REQUEST, f"The MCP server_url '{echo(url)}' is refused: {why}.", param=param
    )


class McpPolicy:
    def __init__(self, settings: McpSettings, servers: Mapping[str, McpServerConfig]) -> None:
        self.settings = settings
        self.servers = dict(servers)

    def targets(self, tool: tools_pb2.McpTool, param: str) -> dict[str, Target]:
        """The servers behind `tool` by the prefix their tools get ("" for a single server); raises a
        400 naming `param` when the request may not reach them. The address check is `check_address`."""
        if not tool.HasField("server_url"):
            raise GatewayError(
                Reason.INVALID_REQUEST,
                "This gateway runs MCP tools with a server_url only (no connector_id or tunnel_id).",
                param=param,
            )
        url = tool.server_url
        if url == REGISTERED:
            if not self.servers:
                raise _refuse(url, f"{param}.server_url", "no mcp_servers are configured")
            # Every server behind one label: each tool is named `<server>-<tool>`, as LiteLLM does
            # (also with one server, so the names stay when another is added).
            return {name: self._registered(name, s) for name, s in self.servers.items()}
        if url.startswith(_ONE_REGISTERED):
            name = url[len(_ONE_REGISTERED) :]
            if name not in self.servers:
                raise _refuse(url, f"{param}.server_url", "no such server in mcp_servers")
            return {"": self._registered(name, self.servers[name])}
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _refuse(url, f"{param}.server_url", "it must be an http(s) URL")
        if not any(fnmatch.fnmatchcase(url, p) for p in self.settings.allowed_server_urls):
            raise _refuse(
                url,
                f"{param}.server_url",
                "client-supplied MCP servers must match a pattern in "
                "gateway_settings.mcp.allowed_server_urls",
            )
        headers = dict(tool.headers)
        if tool.HasField("authorization") and tool.authorization:
            headers["Authorization"] = f"Bearer {tool.authorization}"
        transport = "sse" if parts.path.rstrip("/").endswith("/sse") else "http"
        return {"": Target(url, transport, headers)}

    @staticmethod
    def _registered(name: str, server: McpServerConfig) -> Target:
        transport = "sse" if server.transport == "sse" else "http"
        return Target(server.url, transport, server.all_headers(), registered=name)


async def check_address(target: Target, param: str) -> None:
    """Refuse a client-supplied server whose host is, or resolves to, a link-local or metadata address.
    A name that does not resolve passes: connecting to it fails, and that is the call's error."""
    if target.registered:
        return
    host = urlsplit(target.url).hostname or ""
    if host.lower().rstrip(".") in _METADATA_HOSTS:
        raise _refuse(target.url, param, "cloud metadata services are never reachable")
    try:
        ips = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            return
        ips = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if any(_refused_ip(ip) for ip in ips):
        raise _refuse(target.url, param, "link-local and cloud metadata addresses are never reachable")
