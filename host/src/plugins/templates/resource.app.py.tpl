"""{{name}}: a switchyard resource plugin in Python (componentize-py): MCP resources."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.resource import ResourceSpec, ResourceTemplate
from wit_world.imports.switchyard_plugin_types import EmbeddedResource, Error_NotFound, ResourceBody_Text

README = "{{name}}://readme"
NOTES = "{{name}}://notes/"


class Resource(exports.Resource):
    def list_resources(self) -> list:
        return [ResourceSpec(README, "readme", None, None, "text/markdown")]

    def list_resource_templates(self) -> list:
        return [ResourceTemplate(NOTES + "{id}", "note", None, "A note by id", "text/plain")]

    def read_resource(self, uri: str) -> list:
        if uri == README:
            text = "# {{name}}\n\nServed by a switchyard plugin.\n"
            return [EmbeddedResource(uri, "text/markdown", ResourceBody_Text(text))]
        note = uri.removeprefix(NOTES)
        if uri.startswith(NOTES) and note and "/" not in note:
            return [EmbeddedResource(uri, "text/plain", ResourceBody_Text(f"Note {note}"))]
        raise Err(Error_NotFound(f"no resource `{uri}`"))
