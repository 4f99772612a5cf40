// {{name}}: a switchyard prompt plugin in C (wit-bindgen c + clang): MCP prompts.
#include "prompt_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef prompt_plugin_string_t str_t;
typedef exports_switchyard_plugin_prompt_error_t error_t;

static bool is(const str_t *s, const char *text) { return s->len == strlen(text) && memcmp(s->ptr, text, s->len) == 0; }

static void argument(exports_switchyard_plugin_prompt_prompt_argument_t *a, const char *name, const char *description,
                     bool required) {
  prompt_plugin_string_dup(&a->name, name);
  a->description.is_some = true;
  prompt_plugin_string_dup(&a->description.val, description);
  a->required = required;
}

void exports_switchyard_plugin_prompt_list_prompts(exports_switchyard_plugin_prompt_list_prompt_spec_t *ret) {
  ret->len = 1;
  ret->ptr = calloc(1, sizeof *ret->ptr);
  prompt_plugin_string_dup(&ret->ptr[0].name, "brief");
  ret->ptr[0].description.is_some = true;
  prompt_plugin_string_dup(&ret->ptr[0].description.val, "Ask for a short brief on a topic");
  ret->ptr[0].arguments.len = 2;
  ret->ptr[0].arguments.ptr = calloc(2, sizeof *ret->ptr[0].arguments.ptr);
  argument(&ret->ptr[0].arguments.ptr[0], "topic", "What the brief is about", true);
  argument(&ret->ptr[0].arguments.ptr[1], "audience", "Who reads it (default: engineers)", false);
}

bool exports_switchyard_plugin_prompt_get_prompt(str_t *name, prompt_plugin_list_tuple2_string_string_t *arguments,
                                                 exports_switchyard_plugin_prompt_prompt_result_t *ret, error_t *err) {
  memset(ret, 0, sizeof *ret); // the generated caller does not clear it
  const str_t *topic = NULL, *audience = NULL;
  for (size_t i = 0; i < arguments->len; i++) {
    if (is(&arguments->ptr[i].f0, "topic") && arguments->ptr[i].f1.len > 0) topic = &arguments->ptr[i].f1;
    if (is(&arguments->ptr[i].f0, "audience") && arguments->ptr[i].f1.len > 0) audience = &arguments->ptr[i].f1;
  }
  bool ok = false;
  if (!is(name, "brief")) {
    err->tag = SWITCHYARD_PLUGIN_TYPES_ERROR_NOT_FOUND;
    prompt_plugin_string_dup(&err->val.not_found, "no such prompt");
  } else if (!topic) {
    err->tag = SWITCHYARD_PLUGIN_TYPES_ERROR_INVALID_INPUT;
    prompt_plugin_string_dup(&err->val.invalid_input, "topic: required");
  } else {
    int length = snprintf(NULL, 0, "Write a brief on %.*s for %.*s.", (int)topic->len, (const char *)topic->ptr,
                          audience ? (int)audience->len : 9, audience ? (const char *)audience->ptr : "engineers");
    char *text = malloc((size_t)length + 1);
    snprintf(text, (size_t)length + 1, "Write a brief on %.*s for %.*s.", (int)topic->len, (const char *)topic->ptr,
             audience ? (int)audience->len : 9, audience ? (const char *)audience->ptr : "engineers");
    ret->description.is_some = false;
    ret->messages.len = 1;
    ret->messages.ptr = calloc(1, sizeof *ret->messages.ptr);
    ret->messages.ptr[0].role = EXPORTS_SWITCHYARD_PLUGIN_PROMPT_ROLE_USER;
    ret->messages.ptr[0].content.tag = SWITCHYARD_PLUGIN_TYPES_CONTENT_TEXT;
    prompt_plugin_string_set(&ret->messages.ptr[0].content.val.text, text);
    ok = true;
  }
  prompt_plugin_string_free(name);
  prompt_plugin_list_tuple2_string_string_free(arguments);
  return ok;
}
