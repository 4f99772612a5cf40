"""A stdio MCP server with the standard library only (newline-delimited
JSON-RPC, as MCP's stdio transport specifies): one tool, `add`, and a line on
standard error for every request (which the host logs, never parses)."""

import json
import sys

TOOLS = [{
    "name": "add",
    "description": "Add two numbers.",
    "inputSchema": {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
}]

for line in sys.stdin:
    message = json.loads(line)
    print(f"got {message.get('method')}", file=sys.stderr, flush=True)
    if "id" not in message or "method" not in message:
        continue
    method = message["method"]
    if method == "initialize":
        result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                  "serverInfo": {"name": "py-stdio", "version": "1.0"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        args = message["params"].get("arguments", {})
        result = {"content": [{"type": "text", "text": str(args["a"] + args["b"])}]}
    else:
        result = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}) + "\n")
    sys.stdout.flush()
