"""The Python guest fixture: the same four tools as every guest-language fixture.

Built with `componentize-py -d wit -w switchyard:plugin/tool-plugin componentize app -o guest-python.wasm`.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.tool import CallContext, ToolAnnotations, ToolOutput, ToolSpec
from wit_world.imports import host, outgoing_handler, streams, wasi_http_types as http
from wit_world.imports.switchyard_plugin_types import (
    Content_Json,
    Content_Text,
    Error_Denied,
    Error_InvalidInput,
    Error_NotFound,
    Error_Unavailable,
    LogLevel,
)


def spec(name: str, description: str, properties: dict, required: list) -> ToolSpec:
    schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    hints = ToolAnnotations(read_only=None, destructive=None, idempotent=None, open_world=None)
    return ToolSpec(name, None, description, json.dumps(schema), None, hints)


TEXT = {"type": "string", "maxLength": 100000}


def http_get(url: str) -> str:
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    request = http.OutgoingRequest(http.Fields())
    request.set_scheme(http.Scheme_Https() if scheme == "https" else http.Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query(slash + path)
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise Err(Error_Denied(f"request refused: {e.value}"))
    future.subscribe().block()
    result = future.get()
    if result is None or isinstance(result, Err):
        raise Err(Error_Unavailable("no response"))
    if isinstance(result.value, Err):
        code = result.value.value
        if isinstance(code, http.ErrorCode_HttpRequestDenied):
            raise Err(Error_Denied(f"the host refused the request to {authority}"))
        raise Err(Error_Unavailable(f"no response: {code}"))
    response = result.value.value
    body = response.consume()
    stream = body.stream()
    data = b""
    while True:
        try:
            data += stream.blocking_read(16384)
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                break
            raise Err(Error_Unavailable("reading the body failed"))
    return f"{response.status()} {data.decode('utf-8', 'replace')}"


class Tool(exports.Tool):
    def list_tools(self) -> list:
        return [
            spec("word_count", "Count the words in a text", {"text": TEXT}, ["text"]),
            spec("remember", "Store a value under a key", {"key": {"type": "string", "maxLength": 200}, "value": TEXT}, ["key", "value"]),
            spec("recall", "Read the value stored under a key", {"key": {"type": "string", "maxLength": 200}}, ["key"]),
            spec("fetch", "GET a URL and return its status and body", {"url": {"type": "string", "maxLength": 2000}}, ["url"]),
        ]

    def call_tool(self, name: str, arguments: str, context: CallContext) -> ToolOutput:
        args = json.loads(arguments)
        if name == "word_count":
            words = len(args["text"].split())
            if words == 0:
                raise Err(Error_InvalidInput("text: has no words"))
            host.log(LogLevel.INFO, f"word_count: {words} words for {context.caller}")
            return ToolOutput([Content_Text(f"{words} words"), Content_Json(json.dumps({"words": words}))], json.dumps({"words": words}))
        if name == "remember":
            host.kv_set(args["key"], args["value"].encode())
            return ToolOutput([Content_Text("remembered")], None)
        if name == "recall":
            value = host.kv_get(args["key"])
            if value is None:
                raise Err(Error_NotFound(f"nothing is stored under `{args['key']}`"))
            return ToolOutput([Content_Text(value.decode())], None)
        if name == "fetch":
            return ToolOutput([Content_Text(http_get(args["url"]))], None)
        raise Err(Error_NotFound(f"no tool `{name}`"))
