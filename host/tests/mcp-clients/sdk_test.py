"""The official Python MCP SDK (2.x) against a running switchyard server.

Run by scripts/mcp-clients, which starts the server, creates the users and
tokens, and passes them in the environment:
  MCP_URL, BASE_URL, ADMIN_TOKEN, BOB_TOKEN, CAROL_TOKEN, PACKAGES, SWITCHYARD_BIN, DATA_DIR
"""

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

import mcp.types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

URL = os.environ["MCP_URL"]
BASE = os.environ["BASE_URL"]
PACKAGES = os.environ["PACKAGES"]
FAILURES = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        FAILURES.append(name)


def client(token, **kwargs):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return http, Client(streamable_http_client(URL, http_client=http), **kwargs)


def upload(token, package, query=""):
    with open(os.path.join(PACKAGES, f"{package}-0.1.0.tar.gz"), "rb") as f:
        body = f.read()
    request = urllib.request.Request(
        f"{BASE}/api/v1/plugins{query}",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"},
    )
    with urllib.request.urlopen(request) as r:
        return r.status


def grant(token, plugin, body):
    """Grant `plugin` the capabilities in `body` (an administrator's REST call)."""
    request = urllib.request.Request(
        f"{BASE}/api/v1/plugins/{plugin}/grants",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as r:
        return r.status


def serve_page(html):
    """Serve `html` on a loopback port (a real HTTP server for the fetch plugin)."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


def text(result):
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def unauthenticated():
    request = urllib.request.Request(
        URL,
        data=b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
    )
    try:
        urllib.request.urlopen(request)
        check("401 without a token", False, "the request was accepted")
    except urllib.error.HTTPError as e:
        check("401 without a token", e.code == 401, e.code)
        check("401 carries WWW-Authenticate", "Bearer" in (e.headers.get("WWW-Authenticate") or ""))


async def first_party_tools():
    token = os.environ["ADMIN_TOKEN"]
    http, c = client(token)  # mode "auto": server/discover first, then the fallback to initialize
    async with http, c:
        names = {t.name for t in (await c.list_tools()).tools}
        for expected in ["echo__echo", "notes__remember", "data__json_query", "fetch__get_page"]:
            check(f"tools/list has {expected}", expected in names, sorted(names))
        r = await c.call_tool("echo__echo", {"text": "hello sdk"})
        check("echo__echo", text(r) == "hello sdk" and not r.is_error, r)
        r = await c.call_tool("notes__remember", {"text": "buy milk", "tags": ["home"]})
        check("notes__remember", not r.is_error, r)
        r = await c.call_tool("notes__recall", {"query": "milk"})
        check("notes__recall finds the note", "buy milk" in text(r) and not r.is_error, r)
        r = await c.call_tool("data__json_query", {"input": {"a": [1, 2, 3]}, "filter": ".a | add"})
        check("data__json_query", "6" in text(r) and not r.is_error, r)
        page = serve_page("<html><body><h1>Hello from a page</h1></body></html>")
        r = await c.call_tool("fetch__get_page", {"url": page})
        check("fetch__get_page to loopback is denied under `*`", r.is_error and "non-public" in text(r), r)
        port = page.rsplit(":", 1)[1].strip("/")
        grant(token, "fetch", {"http": ["*", f"127.0.0.1:{port}", "127.0.0.1:9"]})
        r = await c.call_tool("fetch__get_page", {"url": page})
        check("fetch__get_page with the address granted", "Hello from a page" in text(r) and not r.is_error, r)
        r = await c.call_tool("fetch__get_page", {"url": "http://127.0.0.1:9/"})
        check("fetch__get_page to a closed port is a tool error", r.is_error and text(r), r)
        r = await c.call_tool("echo__echo", {"text": 42})
        check("schema violation is a tool error", r.is_error and "schema" in text(r), r)
        try:
            await c.call_tool("no__such_tool", {})
            check("unknown tool is a protocol error", False, "no error")
        except Exception as e:  # the SDK raises McpError for JSON-RPC errors
            check("unknown tool is a protocol error", "unknown tool" in str(e), e)
        prompts = {p.name for p in (await c.list_prompts()).prompts}
        check("skills are prompts", "json-with-jq" in prompts, sorted(prompts))
        p = await c.get_prompt("json-with-jq")
        check("prompts/get returns the SKILL.md body", len(p.messages) == 1 and p.messages[0].content.text, p)
        r = await c.read_resource("skill://json-with-jq/SKILL.md")
        check("resources/read skill://json-with-jq/SKILL.md", r.contents[0].text == p.messages[0].content.text, r)


async def live_install():
    token = os.environ["ADMIN_TOKEN"]
    changed = asyncio.Event()

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    http, c = client(token, message_handler=on_message, mode="legacy")
    async with http, c:
        before = {t.name for t in (await c.list_tools()).tools}
        check("hostile not installed yet", "hostile__echo" not in before)
        await asyncio.get_running_loop().run_in_executor(None, upload, token, "hostile", "?grant=true")
        try:
            await asyncio.wait_for(changed.wait(), 15)
            check("tools/list_changed after a live install", True)
        except asyncio.TimeoutError:
            check("tools/list_changed after a live install", False, "no notification in 15 s")
        after = {t.name for t in (await c.list_tools()).tools}
        check("the new tool is listed without reconnecting", "hostile__echo" in after, sorted(after))


async def views_differ():
    bob, carol = os.environ["BOB_TOKEN"], os.environ["CAROL_TOKEN"]
    await asyncio.get_running_loop().run_in_executor(None, upload, bob, "starter-skills")
    http, c = client(bob)
    async with http, c:
        bob_prompts = {p.name for p in (await c.list_prompts()).prompts}
    http, c = client(carol)
    async with http, c:
        carol_prompts = {p.name for p in (await c.list_prompts()).prompts}
        carol_tools = {t.name for t in (await c.list_tools()).tools}
    check("bob sees his private plugin's skills", "commit-messages" in bob_prompts, sorted(bob_prompts))
    check("carol does not", "commit-messages" not in carol_prompts, sorted(carol_prompts))
    check("carol sees the shared tools", "echo__echo" in carol_tools, sorted(carol_tools))


async def stdio():
    params = StdioServerParameters(
        command=os.environ["SWITCHYARD_BIN"],
        args=["--data-dir", os.environ["DATA_DIR"], "mcp-stdio", "--user", "admin"],
        env={"RUST_LOG": "warn"},
    )
    async with Client(stdio_client(params), mode="legacy") as c:
        names = {t.name for t in (await c.list_tools()).tools}
        check("stdio: tools/list", "echo__echo" in names, sorted(names))
        r = await c.call_tool("echo__echo", {"text": "over stdio"})
        check("stdio: tools/call", text(r) == "over stdio", r)


async def sandbox():
    http, c = client(os.environ["BOB_TOKEN"])
    async with http, c:
        names = {t.name for t in (await c.list_tools()).tools}
        check("tools/list has the sandbox tools", {"sandbox_create", "sandbox_exec", "sandbox_read_file"} <= names, sorted(names))
        r = await c.call_tool("sandbox_create", {"name": "sdk"})
        check("sandbox_create", not r.is_error and r.structured_content and r.structured_content.get("id"), r)
        if r.is_error:
            return
        sid = r.structured_content["id"]
        r = await c.call_tool("sandbox_exec", {"id": sid, "command": "python3 -c 'print(6*7)' | tee output/answer.txt"})
        check("sandbox_exec runs python3", not r.is_error and r.structured_content["stdout"] == "42\n", r)
        r = await c.call_tool("sandbox_read_file", {"id": sid, "path": "output/answer.txt"})
        check("sandbox_read_file reads the output", text(r) == "42\n", r)
        r = await c.call_tool("sandbox_exec", {"id": sid, "command": "curl -sS -m 3 http://1.1.1.1/ || exit 9"})
        check("no network by default", r.is_error and r.structured_content["exit_code"] == 9, r)
        r = await c.call_tool("sandbox_delete", {"id": sid})
        check("sandbox_delete", not r.is_error, r)


async def tasks():
    http, c = client(os.environ["BOB_TOKEN"])
    async with http, c:
        names = {t.name for t in (await c.list_tools()).tools}
        check("tools/list has the task tools", {"task_run", "task_status", "task_events", "task_cancel", "session_list", "agent_list"} <= names, sorted(names))
        r = await c.call_tool("task_run", {"kind": "exec", "command": "echo from-a-task", "wait_secs": 120})
        task = r.structured_content or {}
        check("task_run waits for an exec task", not r.is_error and task.get("status") == "completed", r)
        if not task.get("id"):
            return
        r = await c.call_tool("task_events", {"task_id": task["id"]})
        events = (r.structured_content or {}).get("events", [])
        out = "".join(e["data"].get("text", "") for e in events if e["type"] == "output")
        check("task_events has the output", out == "from-a-task\n", events)
        check("task_events seqs are contiguous", [e["seq"] for e in events] == list(range(1, len(events) + 1)), events)
        r = await c.call_tool("task_cancel", {"task_id": task["id"]})
        check("task_cancel of a finished task is an error result", r.is_error, r)
        r = await c.call_tool("session_list", {})
        sessions = (r.structured_content or {}).get("sessions", [])
        check("session_list has the task's session", any(s["id"] == task["session_id"] for s in sessions), r)
        r = await c.call_tool("task_run", {"kind": "agent", "content": "hello", "wait_secs": 60})
        check("an agent task without a provider says what to set", r.is_error and "llm_not_configured" in text(r), r)


async def main():
    await unauthenticated()
    await first_party_tools()
    await sandbox()
    await tasks()
    await live_install()
    await views_differ()
    await stdio()
    print(f"python sdk: {len(FAILURES)} failure(s)")
    sys.exit(1 if FAILURES else 0)


asyncio.run(main())
