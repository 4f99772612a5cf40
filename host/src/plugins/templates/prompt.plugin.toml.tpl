name = "{{name}}"
version = "0.1.0"
description = "A switchyard prompt plugin"
kinds = ["prompt"]
component = "{{name}}.wasm"
