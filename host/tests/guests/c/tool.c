// The C guest fixture: the same four tools as every guest-language fixture.
// Bindings: `wit-bindgen c wit --world switchyard:plugin/tool-plugin`; built with
// clang --target=wasm32-wasip2 (see `switchyard plugin build`).
#include "tool_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef tool_plugin_string_t str_t;
typedef exports_switchyard_plugin_tool_tool_spec_t spec_t;
typedef exports_switchyard_plugin_tool_error_t error_t;

#define TEXT "{\"type\":\"string\",\"maxLength\":100000}"
#define KEY "{\"type\":\"string\",\"maxLength\":200}"

static void spec(spec_t *s, const char *name, const char *description, const char *properties, const char *required) {
  char schema[512];
  snprintf(schema, sizeof schema,
           "{\"type\":\"object\",\"properties\":{%s},\"required\":[%s],\"additionalProperties\":false}", properties,
           required);
  memset(s, 0, sizeof *s);
  tool_plugin_string_dup(&s->name, name);
  tool_plugin_string_dup(&s->description, description);
  tool_plugin_string_dup(&s->input_schema, schema);
}

void exports_switchyard_plugin_tool_list_tools(exports_switchyard_plugin_tool_list_tool_spec_t *ret) {
  ret->len = 4;
  ret->ptr = calloc(4, sizeof(spec_t));
  spec(&ret->ptr[0], "word_count", "Count the words in a text", "\"text\":" TEXT, "\"text\"");
  spec(&ret->ptr[1], "remember", "Store a value under a key", "\"key\":" KEY ",\"value\":" TEXT, "\"key\",\"value\"");
  spec(&ret->ptr[2], "recall", "Read the value stored under a key", "\"key\":" KEY, "\"key\"");
  spec(&ret->ptr[3], "fetch", "GET a URL and return its status and body",
       "\"url\":{\"type\":\"string\",\"maxLength\":2000}", "\"url\"");
}

// The string value of `"field"` in a flat JSON object the host checked against
// the schema (escapes \" \\ \n \t and \u00XX are decoded); NULL when absent.
static char *field(const str_t *json, const char *name) {
  char pattern[80];
  snprintf(pattern, sizeof pattern, "\"%s\"", name);
  char *text = strndup((const char *)json->ptr, json->len);
  char *at = strstr(text, pattern);
  if (!at) return free(text), NULL;
  at = strchr(at + strlen(pattern), '"');
  if (!at) return free(text), NULL;
  char *out = malloc(strlen(at) + 1), *o = out;
  for (char *p = at + 1; *p && *p != '"'; p++) {
    if (*p != '\\') { *o++ = *p; continue; }
    switch (*++p) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'u': { unsigned c = 0; sscanf(p + 1, "%4x", &c); *o++ = c < 128 ? (char)c : '?'; p += 4; break; }
      default: *o++ = *p;
    }
  }
  *o = 0;
  free(text);
  return out;
}

static bool fail(error_t *err, uint8_t tag, const char *message) {
  err->tag = tag;
  tool_plugin_string_dup(&err->val.invalid_input, message);
  return false;
}

static void text(exports_switchyard_plugin_tool_tool_output_t *ret, const char *message) {
  ret->content.len = 1;
  ret->content.ptr = calloc(1, sizeof *ret->content.ptr);
  ret->content.ptr[0].tag = SWITCHYARD_PLUGIN_TYPES_CONTENT_TEXT;
  tool_plugin_string_dup(&ret->content.ptr[0].val.text, message);
  ret->structured.is_some = false;
}

static bool http_get(const char *url, exports_switchyard_plugin_tool_tool_output_t *ret, error_t *err) {
  const char *rest = strstr(url, "://");
  if (!rest) return fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_INVALID_INPUT, "url: not an absolute URL");
  bool https = strncmp(url, "https", 5) == 0;
  rest += 3;
  const char *slash = strchr(rest, '/');
  str_t authority, path;
  tool_plugin_string_dup_n(&authority, rest, slash ? (size_t)(slash - rest) : strlen(rest));
  tool_plugin_string_dup(&path, slash ? slash : "/");
  wasi_http_types_own_outgoing_request_t request =
      wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
  wasi_http_types_borrow_outgoing_request_t r = wasi_http_types_borrow_outgoing_request(request);
  wasi_http_types_scheme_t scheme = {.tag = https ? WASI_HTTP_TYPES_SCHEME_HTTPS : WASI_HTTP_TYPES_SCHEME_HTTP};
  wasi_http_types_method_outgoing_request_set_scheme(r, &scheme);
  wasi_http_types_method_outgoing_request_set_authority(r, &authority);
  wasi_http_types_method_outgoing_request_set_path_with_query(r, &path);
  tool_plugin_string_free(&authority);
  tool_plugin_string_free(&path);
  wasi_http_outgoing_handler_own_future_incoming_response_t future;
  wasi_http_outgoing_handler_error_code_t code;
  if (!wasi_http_outgoing_handler_handle(request, NULL, &future, &code))
    return fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_DENIED, "request refused by the host");
  wasi_http_types_borrow_future_incoming_response_t f = wasi_http_types_borrow_future_incoming_response(future);
  wasi_io_poll_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(f);
  wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
  wasi_io_poll_pollable_drop_own(ready);
  wasi_http_types_result_result_own_incoming_response_error_code_void_t result;
  bool got = wasi_http_types_method_future_incoming_response_get(f, &result);
  wasi_http_types_future_incoming_response_drop_own(future);
  if (!got || result.is_err) return fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_UNAVAILABLE, "no response");
  if (result.val.ok.is_err) {
    if (result.val.ok.val.err.tag == WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED)
      return fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_DENIED, "the host refused the request");
    return fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_UNAVAILABLE, "no response");
  }
  wasi_http_types_own_incoming_response_t response = result.val.ok.val.ok;
  wasi_http_types_borrow_incoming_response_t resp = wasi_http_types_borrow_incoming_response(response);
  unsigned status = wasi_http_types_method_incoming_response_status(resp);
  wasi_http_types_own_incoming_body_t body;
  wasi_http_types_method_incoming_response_consume(resp, &body);
  wasi_http_types_own_input_stream_t stream;
  wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &stream);
  size_t len = 0;
  char *data = malloc(16);
  len = (size_t)snprintf(data, 16, "%u ", status);
  for (;;) {
    tool_plugin_list_u8_t chunk;
    wasi_io_streams_stream_error_t e;
    if (!wasi_io_streams_method_input_stream_blocking_read(wasi_io_streams_borrow_input_stream(stream), 16384, &chunk,
                                                            &e))
      break;
    data = realloc(data, len + chunk.len + 1);
    memcpy(data + len, chunk.ptr, chunk.len);
    len += chunk.len;
    tool_plugin_list_u8_free(&chunk);
  }
  data[len] = 0;
  wasi_io_streams_input_stream_drop_own(stream);
  wasi_http_types_incoming_body_drop_own(body);
  wasi_http_types_incoming_response_drop_own(response);
  text(ret, data);
  free(data);
  return true;
}

bool exports_switchyard_plugin_tool_call_tool(str_t *name, str_t *arguments,
                                              exports_switchyard_plugin_tool_call_context_t *context,
                                              exports_switchyard_plugin_tool_tool_output_t *ret, error_t *err) {
  char *tool = strndup((const char *)name->ptr, name->len);
  bool ok = true;
  if (strcmp(tool, "word_count") == 0) {
    char *input = field(arguments, "text");
    int words = 0, inside = 0;
    for (char *p = input; p && *p; p++) {
      int space = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r';
      if (!space && !inside) words++;
      inside = !space;
    }
    free(input);
    if (words == 0) {
      ok = fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_INVALID_INPUT, "text: has no words");
    } else {
      char line[160], json[40];
      snprintf(line, sizeof line, "word_count: %d words for %.*s", words,
               context->caller.is_some ? (int)context->caller.val.len : 4,
               context->caller.is_some ? (const char *)context->caller.val.ptr : "None");
      str_t message;
      tool_plugin_string_set(&message, line);
      switchyard_plugin_host_log(SWITCHYARD_PLUGIN_TYPES_LOG_LEVEL_INFO, &message);
      snprintf(line, sizeof line, "%d words", words);
      snprintf(json, sizeof json, "{\"words\":%d}", words);
      text(ret, line);
      ret->content.len = 2;
      ret->content.ptr = realloc(ret->content.ptr, 2 * sizeof *ret->content.ptr);
      ret->content.ptr[1].tag = SWITCHYARD_PLUGIN_TYPES_CONTENT_JSON;
      tool_plugin_string_dup(&ret->content.ptr[1].val.json, json);
      ret->structured.is_some = true;
      tool_plugin_string_dup(&ret->structured.val, json);
    }
  } else if (strcmp(tool, "remember") == 0 || strcmp(tool, "recall") == 0) {
    char *key = field(arguments, "key");
    str_t k;
    tool_plugin_string_set(&k, key);
    switchyard_plugin_host_error_t e;
    if (tool[2] == 'm') {
      char *value = field(arguments, "value");
      tool_plugin_list_u8_t v = {(uint8_t *)value, strlen(value)};
      if (switchyard_plugin_host_kv_set(&k, &v, &e)) text(ret, "remembered");
      else ok = (*err = e, false);
      free(value);
    } else {
      tool_plugin_option_list_u8_t found;
      if (!switchyard_plugin_host_kv_get(&k, &found, &e)) {
        ok = (*err = e, false);
      } else if (!found.is_some) {
        char message[300];
        snprintf(message, sizeof message, "nothing is stored under `%s`", key);
        ok = fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_NOT_FOUND, message);
      } else {
        char *value = strndup((const char *)found.val.ptr, found.val.len);
        text(ret, value);
        free(value);
        tool_plugin_option_list_u8_free(&found);
      }
    }
    free(key);
  } else if (strcmp(tool, "fetch") == 0) {
    char *url = field(arguments, "url");
    ok = http_get(url, ret, err);
    free(url);
  } else {
    ok = fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_NOT_FOUND, "no such tool");
  }
  free(tool);
  tool_plugin_string_free(name);
  tool_plugin_string_free(arguments);
  tool_plugin_string_free(&context->request_id);
  tool_plugin_option_string_free(&context->caller);
  return ok;
}
