"""{{name}}: a switchyard tool plugin in Python (componentize-py)."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.tool import CallContext, ToolAnnotations, ToolOutput, ToolSpec
from wit_world.imports import host
from wit_world.imports.switchyard_plugin_types import Content_Text, Error_InvalidInput, Error_NotFound, LogLevel

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "description": "Who to greet", "maxLength": 200}},
    "required": ["name"],
    "additionalProperties": False,
}


class Tool(exports.Tool):
    def list_tools(self) -> list:
        hints = ToolAnnotations(read_only=True, destructive=None, idempotent=None, open_world=None)
        return [ToolSpec("greet", None, "Greet someone by name", json.dumps(SCHEMA), None, hints)]

    def call_tool(self, name: str, arguments: str, context: CallContext) -> ToolOutput:
        if name != "greet":
            raise Err(Error_NotFound(f"no tool `{name}`"))
        who = json.loads(arguments)["name"].strip()
        if not who:
            raise Err(Error_InvalidInput("name: must not be blank"))
        host.log(LogLevel.INFO, f"greeting {who} for {context.caller}")
        return ToolOutput([Content_Text(f"Hello, {who}!")], None)
