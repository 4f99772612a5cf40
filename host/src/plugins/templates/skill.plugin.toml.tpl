name = "{{name}}"
version = "0.1.0"
description = "A switchyard skill plugin"
kinds = ["skill"]
component = "{{name}}.wasm"
