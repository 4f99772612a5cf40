// {{name}}: a switchyard channel plugin for a plain-text webhook, in C (wit-bindgen c + clang).
// Webhook calls POST the message text as the body with the headers
// `x-webhook-token: <the secret webhook_token>`, `x-conversation`, `x-sender` and
// (to deduplicate redeliveries) `x-delivery-id`. Replies are POSTed as text to
// the configured `reply_url` with the conversation in `x-conversation`.
#include "channel_plugin.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef channel_plugin_string_t str_t;
typedef exports_switchyard_plugin_channel_error_t error_t;

static bool fail(error_t *err, uint8_t tag, const char *message) {
  err->tag = tag;
  channel_plugin_string_dup(&err->val.failed, message);
  return false;
}

// The value of a header (names compared without case), or NULL.
static const str_t *header(const switchyard_plugin_types_headers_t *headers, const char *name) {
  for (size_t i = 0; i < headers->len; i++)
    if (headers->ptr[i].f0.len == strlen(name) && strncasecmp((const char *)headers->ptr[i].f0.ptr, name, strlen(name)) == 0)
      return &headers->ptr[i].f1;
  return NULL;
}

// Equal, in time that does not depend on where they differ.
static bool same(const str_t *a, const str_t *b) {
  uint8_t diff = a->len != b->len;
  for (size_t i = 0; i < a->len && i < b->len; i++) diff |= a->ptr[i] ^ b->ptr[i];
  return diff == 0;
}

// Whether the bytes are UTF-8, as a WIT string must be (a body need not be).
static bool utf8(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = p[i++];
    int extra = c < 0x80 ? 0 : c < 0xc2 ? -1 : c < 0xe0 ? 1 : c < 0xf0 ? 2 : c < 0xf5 ? 3 : -1;
    if (extra < 0 || (size_t)extra > n - i) return false;
    while (extra--)
      if ((p[i++] & 0xc0) != 0x80) return false;
  }
  return true;
}

void exports_switchyard_plugin_channel_describe(exports_switchyard_plugin_channel_channel_info_t *ret) {
  channel_plugin_string_dup(&ret->name, "{{name}}");
  channel_plugin_string_dup(&ret->description, "Plain-text webhook channel");
}

bool exports_switchyard_plugin_channel_handle_webhook(switchyard_plugin_types_http_request_t *request,
                                                      exports_switchyard_plugin_channel_webhook_outcome_t *ret,
                                                      error_t *err) {
  memset(ret, 0, sizeof *ret); // the generated caller does not clear it
  str_t name, token;
  channel_plugin_string_set(&name, "webhook_token");
  if (!switchyard_plugin_host_get_secret(&name, &token, err)) {
    switchyard_plugin_types_http_request_free(request);
    return false;
  }
  const str_t *given = header(&request->headers, "x-webhook-token");
  const str_t *conversation = header(&request->headers, "x-conversation");
  const str_t *sender = header(&request->headers, "x-sender");
  const str_t *id = header(&request->headers, "x-delivery-id");
  bool ok = false;
  if (!given || !same(given, &token)) {
    fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_DENIED, "x-webhook-token is missing or wrong");
  } else if (!conversation || !conversation->len || !sender || !request->body.len ||
             !utf8(request->body.ptr, request->body.len)) {
    fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_INVALID_INPUT, "expected x-conversation, x-sender and a UTF-8 text body");
  } else {
    ret->response.status = 202;
    ret->messages.len = 1;
    ret->messages.ptr = calloc(1, sizeof *ret->messages.ptr);
    exports_switchyard_plugin_channel_inbound_message_t *m = &ret->messages.ptr[0];
    channel_plugin_string_dup_n(&m->conversation_key, (const char *)conversation->ptr, conversation->len);
    channel_plugin_string_dup_n(&m->reply_target, (const char *)conversation->ptr, conversation->len);
    channel_plugin_string_dup_n(&m->sender, (const char *)sender->ptr, sender->len);
    channel_plugin_string_dup_n(&m->text, (const char *)request->body.ptr, request->body.len);
    if (id) {
      m->metadata.len = 1;
      m->metadata.ptr = calloc(1, sizeof *m->metadata.ptr);
      channel_plugin_string_dup(&m->metadata.ptr[0].f0, "delivery-id");
      channel_plugin_string_dup_n(&m->metadata.ptr[0].f1, (const char *)id->ptr, id->len);
    }
    ok = true;
  }
  channel_plugin_string_free(&token);
  switchyard_plugin_types_http_request_free(request);
  return ok;
}

// POST `text` to `url`; the status, or 0 with `err` set.
static unsigned post(const char *url, const str_t *conversation, const str_t *text, error_t *err) {
  const char *rest = strstr(url, "://");
  if (!rest) return fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_FAILED, "reply_url is not an absolute URL"), 0;
  bool https = strncmp(url, "https", 5) == 0;
  rest += 3;
  const char *slash = strchr(rest, '/');
  str_t authority, path, key;
  channel_plugin_string_dup_n(&authority, rest, slash ? (size_t)(slash - rest) : strlen(rest));
  channel_plugin_string_dup(&path, slash ? slash : "/");
  wasi_http_types_own_fields_t fields = wasi_http_types_constructor_fields();
  wasi_http_types_header_error_t header_error;
  const char *type = "text/plain; charset=utf-8";
  wasi_http_types_field_value_t value = {(uint8_t *)type, strlen(type)};
  channel_plugin_string_set(&key, "content-type");
  wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(fields), &key, &value, &header_error);
  value = (wasi_http_types_field_value_t){conversation->ptr, conversation->len};
  channel_plugin_string_set(&key, "x-conversation");
  wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(fields), &key, &value, &header_error);
  wasi_http_types_own_outgoing_request_t request = wasi_http_types_constructor_outgoing_request(fields);
  wasi_http_types_borrow_outgoing_request_t r = wasi_http_types_borrow_outgoing_request(request);
  wasi_http_types_method_t method = {.tag = WASI_HTTP_TYPES_METHOD_POST};
  wasi_http_types_scheme_t scheme = {.tag = https ? WASI_HTTP_TYPES_SCHEME_HTTPS : WASI_HTTP_TYPES_SCHEME_HTTP};
  wasi_http_types_method_outgoing_request_set_method(r, &method);
  wasi_http_types_method_outgoing_request_set_scheme(r, &scheme);
  wasi_http_types_method_outgoing_request_set_authority(r, &authority);
  wasi_http_types_method_outgoing_request_set_path_with_query(r, &path);
  channel_plugin_string_free(&authority);
  channel_plugin_string_free(&path);
  wasi_http_types_own_outgoing_body_t body;
  wasi_http_types_method_outgoing_request_body(r, &body);
  wasi_http_types_own_output_stream_t stream;
  wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);
  wasi_io_streams_stream_error_t stream_error;
  for (size_t at = 0; at < text->len; at += 4096) {
    channel_plugin_list_u8_t chunk = {text->ptr + at, text->len - at < 4096 ? text->len - at : 4096};
    wasi_io_streams_method_output_stream_blocking_write_and_flush(wasi_io_streams_borrow_output_stream(stream), &chunk, &stream_error);
  }
  wasi_io_streams_output_stream_drop_own(stream);
  wasi_http_types_error_code_t code;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &code);
  wasi_http_outgoing_handler_own_future_incoming_response_t future;
  if (!wasi_http_outgoing_handler_handle(request, NULL, &future, &code))
    return fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_DENIED, "the host refused the request to reply_url"), 0;
  wasi_http_types_borrow_future_incoming_response_t f = wasi_http_types_borrow_future_incoming_response(future);
  wasi_io_poll_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(f);
  wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
  wasi_io_poll_pollable_drop_own(ready);
  wasi_http_types_result_result_own_incoming_response_error_code_void_t result;
  bool got = wasi_http_types_method_future_incoming_response_get(f, &result);
  wasi_http_types_future_incoming_response_drop_own(future);
  if (!got || result.is_err || result.val.ok.is_err)
    return fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_UNAVAILABLE, "no answer from reply_url"), 0;
  wasi_http_types_own_incoming_response_t response = result.val.ok.val.ok;
  unsigned status = wasi_http_types_method_incoming_response_status(wasi_http_types_borrow_incoming_response(response));
  wasi_http_types_incoming_response_drop_own(response);
  return status;
}

bool exports_switchyard_plugin_channel_deliver(exports_switchyard_plugin_channel_outbound_message_t *message,
                                               error_t *err) {
  str_t key, url;
  channel_plugin_string_set(&key, "reply_url");
  bool ok = false;
  if (!switchyard_plugin_host_get_config(&key, &url)) {
    fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_FAILED, "reply_url is not set");
  } else {
    char *target = strndup((const char *)url.ptr, url.len);
    unsigned status = post(target, &message->reply_target, &message->text, err);
    ok = status >= 200 && status < 300;
    if (status && !ok) fail(err, SWITCHYARD_PLUGIN_TYPES_ERROR_UNAVAILABLE, "the reply endpoint refused the reply");
    free(target);
    channel_plugin_string_free(&url);
  }
  exports_switchyard_plugin_channel_outbound_message_free(message);
  return ok;
}
