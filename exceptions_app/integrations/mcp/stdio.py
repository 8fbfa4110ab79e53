"""``tollgate-mcp``: the Tollgate MCP server over stdio, for agents that start their tools as local
processes (Claude Desktop, IDEs, the agent SDKs' stdio transports).

    tollgate-mcp --url https://tollgate.example.com --token tg_...

It is a proxy to the server's own ``/mcp`` (streamable HTTP): it lists that server's tools and
forwards each call, with the progress notifications of a wait, so the tools, their schemas,
validation and scope are the server's and cannot drift from them. Needs no database or Django
settings: only the ``mcp`` SDK. The token may come from ``TOLLGATE_TOKEN`` instead of the command
line (where other users of the machine could read it in the process list).
"""

import argparse
import os
import sys
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client

# A wait may last 300 s; the server sends progress every few seconds, so this only ends a dead stream.
READ_TIMEOUT_SECONDS = 330.0


def upstream_url(url: str) -> str:
    return url.rstrip("/") + ("" if url.rstrip("/").endswith("/mcp") else "/mcp")


def proxy_build(upstream: Client) -> Server:
    async def list_tools(ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return await upstream.list_tools(cursor=params.cursor if params else None)

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        async def progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(done, total, message)

        return await upstream.call_tool(
            params.name, params.arguments, read_timeout_seconds=READ_TIMEOUT_SECONDS, progress_callback=progress
        )

    return Server("tollgate", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve(url: str, token: str) -> None:
    http = create_mcp_http_client(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(30.0, read=READ_TIMEOUT_SECONDS),
    )
    async with http, Client(streamable_http_client(upstream_url(url), http_client=http)) as upstream:
        server = proxy_build(upstream)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tollgate-mcp", description="Tollgate's MCP server over stdio")
    parser.add_argument("--url", required=True, help="the Tollgate server, e.g. https://tollgate.example.com")
    parser.add_argument("--token", default=os.environ.get("TOLLGATE_TOKEN"), help="an agent token (or TOLLGATE_TOKEN)")
    arguments = parser.parse_args(argv)
    if not arguments.token:
        parser.error("an agent token is required: --token or TOLLGATE_TOKEN")
    try:
        anyio.run(serve, arguments.url, arguments.token)
    except Exception as error:  # one clear line for the agent's log, not a traceback
        print(f"tollgate-mcp: cannot serve {upstream_url(arguments.url)}: {_describe(error)}", file=sys.stderr)
        return 1
    return 0


def _describe(error: BaseException) -> Any:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


if __name__ == "__main__":
    sys.exit(main())
