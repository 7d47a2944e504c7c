"""voicedock as a Model Context Protocol server (``voicedock mcp``): an AI assistant places
calls, reads them and their transcripts, controls a live call and lists the organization's
assistants, through a node's REST API with the organization's API key (docs/mcp.md).

    protocol.py     JSON-RPC 2.0 and the MCP handshake (``initialize``, ``tools/list``,
                    ``tools/call``, ``ping``): one message in, its answer out
    tools.py        the tools, their input schemas, and the REST call each makes
    transports.py   stdio (a line a message) and streamable HTTP (``POST /mcp``, JSON answers)

It is a client of the public API like the CLI's ``test run``: what a key may do there is what
it may do here, and nothing else is reached.
"""
