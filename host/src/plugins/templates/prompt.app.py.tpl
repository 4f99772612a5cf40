"""{{name}}: a switchyard prompt plugin in Python (componentize-py): MCP prompts."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.prompt import PromptArgument, PromptMessage, PromptResult, PromptSpec, Role
from wit_world.imports.switchyard_plugin_types import Content_Text, Error_InvalidInput, Error_NotFound


class Prompt(exports.Prompt):
    def list_prompts(self) -> list:
        arguments = [
            PromptArgument("topic", "What the brief is about", True),
            PromptArgument("audience", "Who reads it (default: engineers)", False),
        ]
        return [PromptSpec("brief", None, "Ask for a short brief on a topic", arguments)]

    def get_prompt(self, name: str, arguments: list) -> PromptResult:
        if name != "brief":
            raise Err(Error_NotFound(f"no prompt `{name}`"))
        args = dict(arguments)
        topic = args.get("topic", "").strip()
        if not topic:
            raise Err(Error_InvalidInput("topic: required"))
        text = f"Write a brief on {topic} for {args.get('audience') or 'engineers'}."
        return PromptResult(None, [PromptMessage(Role.USER, Content_Text(text))])
