// {{name}}: a switchyard resource plugin in C (wit-bindgen c + clang): MCP resources.
#include "resource_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define README "{{name}}://readme"
#define NOTES "{{name}}://notes/"

typedef resource_plugin_string_t str_t;

static void some(resource_plugin_option_string_t *option, const char *text) {
  option->is_some = true;
  resource_plugin_string_dup(&option->val, text);
}

void exports_switchyard_plugin_resource_list_resources(exports_switchyard_plugin_resource_list_resource_spec_t *ret) {
  ret->len = 1;
  ret->ptr = calloc(1, sizeof *ret->ptr);
  resource_plugin_string_dup(&ret->ptr[0].uri, README);
  resource_plugin_string_dup(&ret->ptr[0].name, "readme");
  some(&ret->ptr[0].mime_type, "text/markdown");
}

void exports_switchyard_plugin_resource_list_resource_templates(
    exports_switchyard_plugin_resource_list_resource_template_t *ret) {
  ret->len = 1;
  ret->ptr = calloc(1, sizeof *ret->ptr);
  resource_plugin_string_dup(&ret->ptr[0].uri_template, NOTES "{id}");
  resource_plugin_string_dup(&ret->ptr[0].name, "note");
  some(&ret->ptr[0].description, "A note by id");
  some(&ret->ptr[0].mime_type, "text/plain");
}

bool exports_switchyard_plugin_resource_read_resource(str_t *uri,
                                                      exports_switchyard_plugin_resource_list_embedded_resource_t *ret,
                                                      exports_switchyard_plugin_resource_error_t *err) {
  char *text = NULL;
  const char *mime = "text/plain";
  size_t notes = strlen(NOTES);
  if (uri->len == strlen(README) && memcmp(uri->ptr, README, uri->len) == 0) {
    text = strdup("# {{name}}\n\nServed by a switchyard plugin.\n");
    mime = "text/markdown";
  } else if (uri->len > notes && memcmp(uri->ptr, NOTES, notes) == 0 &&
             !memchr(uri->ptr + notes, '/', uri->len - notes)) {
    int id = (int)(uri->len - notes);
    text = malloc((size_t)id + 6);
    snprintf(text, (size_t)id + 6, "Note %.*s", id, (const char *)uri->ptr + notes);
  }
  if (text) {
    ret->len = 1;
    ret->ptr = calloc(1, sizeof *ret->ptr);
    ret->ptr[0].uri = *uri;
    some(&ret->ptr[0].mime_type, mime);
    ret->ptr[0].body.tag = SWITCHYARD_PLUGIN_TYPES_RESOURCE_BODY_TEXT;
    resource_plugin_string_set(&ret->ptr[0].body.val.text, text);
    return true;
  }
  err->tag = SWITCHYARD_PLUGIN_TYPES_ERROR_NOT_FOUND;
  resource_plugin_string_dup(&err->val.not_found, "no such resource");
  resource_plugin_string_free(uri);
  return false;
}
