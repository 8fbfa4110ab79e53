"""An agent that asks Tollgate through MCP before it acts: lists its tools and workflows, sends an
output through request_review, prints the progress while a person reviews it, and acts on the
final output (or keeps the exception id to ask again later).

    python examples/mcp_agent.py --url http://127.0.0.1:8000 --token tg_... --confidence 0.6
    python examples/mcp_agent.py --stdio --url http://127.0.0.1:8000 --token tg_...   # via tollgate-mcp

Create a token with: python manage.py create_token example-agent --role agent \
    --workflows billing.invoice_adjustment
Needs only the `mcp` package (pip install "mcp>=2.3,<3").
"""

import argparse
import asyncio
import json
import os
import shutil

from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

WORKFLOW = "billing.invoice_adjustment"


def transport(arguments):
    if arguments.stdio:
        command = shutil.which("tollgate-mcp") or "tollgate-mcp"
        environment = {"PATH": os.environ.get("PATH", ""), "TOLLGATE_TOKEN": arguments.token}
        return stdio_client(StdioServerParameters(command=command, args=["--url", arguments.url], env=environment))
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {arguments.token}"})
    return streamable_http_client(arguments.url.rstrip("/") + "/mcp", http_client=http)


async def run(arguments) -> int:
    proposal = {"invoice_id": "INV-7001", "type": "credit", "amount": 240.0, "currency": "EUR", "reason": "dispute"}

    async def progress(done: float, total: float | None, message: str | None) -> None:
        print(f"  waiting {done:.0f}/{total:.0f} s: {message}")

    async with Client(transport(arguments)) as tollgate:
        print("tools:", ", ".join(tool.name for tool in (await tollgate.list_tools()).tools))
        workflows = (await tollgate.call_tool("list_workflows", {})).structured_content["workflows"]
        print("workflows:", ", ".join(workflow["name"] for workflow in workflows))
        result = await tollgate.call_tool(
            "request_review",
            {
                "workflow": WORKFLOW,
                "output": proposal,
                "confidence": arguments.confidence,
                "input": {"invoice_total": 900.0, "currency": "EUR"},
                "correlation_id": "mcp-example-1",
                "wait_seconds": arguments.wait,
            },
            progress_callback=progress,
        )
        if result.is_error:
            print("refused:", result.content[0].text)
            return 1
        answer = result.structured_content
        print(f"verdict: {answer['verdict']}; {answer['message']}")
        if answer["final"] and answer["final_output"] is not None:
            print("acting on:", json.dumps(answer["final_output"]))
        elif not answer["final"]:
            print(f"ask later: get_resolution(exception_id={answer['exception_id']})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--token", default=os.environ.get("TOLLGATE_TOKEN"), required="TOLLGATE_TOKEN" not in os.environ
    )
    parser.add_argument("--confidence", type=float, default=0.6, help="below the policy's 0.90: held for a person")
    parser.add_argument("--wait", type=int, default=120, help="seconds to wait for the person (up to 300)")
    parser.add_argument("--stdio", action="store_true", help="go through the tollgate-mcp console script")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
