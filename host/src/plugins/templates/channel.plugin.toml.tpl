name = "{{name}}"
version = "0.1.0"
description = "A switchyard channel plugin for a JSON webhook"
kinds = ["channel"]
component = "{{name}}.wasm"

[capabilities]
http = ["chat.example.com"]
secrets = ["webhook_token"]

[config.reply_url]
type = "string"
description = "Where replies are POSTed"
default = "https://chat.example.com/reply"
