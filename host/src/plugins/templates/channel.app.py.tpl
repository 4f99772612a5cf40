"""{{name}}: a switchyard channel plugin for a JSON webhook, in Python (componentize-py).

Webhook calls POST `{"conversation", "sender", "text", "id"}` with the header
`x-webhook-token: <the secret webhook_token>`; `id` deduplicates redeliveries.
Replies are POSTed as JSON `{"conversation", "text"}` to the configured `reply_url`.
"""

import hmac
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.channel import ChannelInfo, InboundMessage, OutboundMessage, WebhookOutcome
from wit_world.imports import host, outgoing_handler, wasi_http_types as http
from wit_world.imports.switchyard_plugin_types import (
    Error_Denied,
    Error_Failed,
    Error_InvalidInput,
    Error_Unavailable,
    HttpRequest,
    HttpResponse,
)


def header(request: HttpRequest, name: str):
    return next((value for key, value in request.headers if key.lower() == name), None)


def post_json(url: str, payload: dict) -> int:
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    request = http.OutgoingRequest(http.Fields.from_list([("content-type", b"application/json")]))
    request.set_method(http.Method_Post())
    request.set_scheme(http.Scheme_Https() if scheme == "https" else http.Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query(slash + path)
    body, data = request.body(), json.dumps(payload).encode()
    with body.write() as stream:
        for start in range(0, len(data), 4096):
            stream.blocking_write_and_flush(data[start : start + 4096])
    http.OutgoingBody.finish(body, None)
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise Err(Error_Denied(f"the host refused the request to {authority}: {e.value}"))
    future.subscribe().block()
    result = future.get()
    if result is None or isinstance(result, Err) or isinstance(result.value, Err):
        raise Err(Error_Unavailable(f"no answer from {authority}"))
    return result.value.value.status()


class Channel(exports.Channel):
    def describe(self) -> ChannelInfo:
        return ChannelInfo("{{name}}", "JSON webhook channel")

    def handle_webhook(self, request: HttpRequest) -> WebhookOutcome:
        token = host.get_secret("webhook_token")
        given = header(request, "x-webhook-token") or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Err(Error_Denied("x-webhook-token is missing or wrong"))
        try:
            body = json.loads(request.body)
            conversation, sender, text = (str(body[key]) for key in ("conversation", "sender", "text"))
        except (ValueError, KeyError, TypeError) as e:
            raise Err(Error_InvalidInput(f"body: expected JSON with conversation, sender and text ({e})"))
        metadata = [("delivery-id", str(body["id"]))] if body.get("id") is not None else []
        message = InboundMessage(conversation, sender, text, conversation, metadata)
        return WebhookOutcome(HttpResponse(202, [], b""), [message])

    def deliver(self, message: OutboundMessage) -> None:
        url = host.get_config("reply_url")
        if not url:
            raise Err(Error_Failed("reply_url is not set"))
        status = post_json(url, {"conversation": message.reply_target, "text": message.text})
        if not 200 <= status < 300:
            raise Err(Error_Unavailable(f"reply endpoint answered {status}"))
