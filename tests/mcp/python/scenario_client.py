"""A scripted MCP client on the official Python SDK (mcp 2.3).

  python3 scenario_client.py MODE ACTIONS -- COMMAND [ARGS...]

MODE is "legacy" (the 2025 initialize handshake) or "2026-07-28" (server/discover, no
session); ACTIONS is a JSON list of {"list": true} and {"call": NAME, "arguments": {...}}.
The client starts COMMAND (for the tests, `mcpsiem collect proxy --stdio -- ...`) and talks
to it over stdio, with this process's environment.
"""

import asyncio
import json
import os
import sys

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import Implementation


async def play(mode: str, actions: list, command: list[str]) -> None:
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    async with Client(params, mode=mode, client_info=Implementation(name="py-scenario-client", version="0.3.1")) as client:
        for action in actions:
            if action.get("list"):
                await client.list_tools()
            else:
                await client.call_tool(action["call"], action.get("arguments", {}))


def main() -> None:
    separator = sys.argv.index("--")
    mode, actions = sys.argv[1], json.loads(sys.argv[2])
    asyncio.run(play(mode, actions, sys.argv[separator + 1 :]))


if __name__ == "__main__":
    main()
