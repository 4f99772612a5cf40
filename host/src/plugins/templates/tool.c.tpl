// {{name}}: a switchyard tool plugin in C (wit-bindgen c + clang).
#include "tool_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void exports_switchyard_plugin_tool_list_tools(exports_switchyard_plugin_tool_list_tool_spec_t *ret) {
  ret->len = 1;
  ret->ptr = calloc(1, sizeof *ret->ptr);
  tool_plugin_string_dup(&ret->ptr[0].name, "greet");
  tool_plugin_string_dup(&ret->ptr[0].description, "Greet someone by name");
  tool_plugin_string_dup(&ret->ptr[0].input_schema,
                         "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":200}},"
                         "\"required\":[\"name\"],\"additionalProperties\":false}");
}

bool exports_switchyard_plugin_tool_call_tool(tool_plugin_string_t *name, tool_plugin_string_t *arguments,
                                              exports_switchyard_plugin_tool_call_context_t *context,
                                              exports_switchyard_plugin_tool_tool_output_t *ret,
                                              exports_switchyard_plugin_tool_error_t *err) {
  memset(ret, 0, sizeof *ret); // the generated caller does not clear it
  char *args = strndup((const char *)arguments->ptr, arguments->len); // as the schema says: {"name": "…"}
  char *start = strchr(strstr(args, "\"name\"") + 6, '"') + 1, *end = strchr(start, '"');
  char text[300];
  bool ok = end > start && snprintf(text, sizeof text, "Hello, %.*s!", (int)(end - start), start) > 0;
  if (ok) {
    ret->content.len = 1;
    ret->content.ptr = calloc(1, sizeof *ret->content.ptr);
    ret->content.ptr[0].tag = SWITCHYARD_PLUGIN_TYPES_CONTENT_TEXT;
    tool_plugin_string_dup(&ret->content.ptr[0].val.text, text);
  } else {
    err->tag = SWITCHYARD_PLUGIN_TYPES_ERROR_INVALID_INPUT;
    tool_plugin_string_dup(&err->val.invalid_input, "name: must not be blank");
  }
  free(args);
  tool_plugin_string_free(name);
  tool_plugin_string_free(arguments);
  exports_switchyard_plugin_tool_call_context_free(context);
  return ok;
}
