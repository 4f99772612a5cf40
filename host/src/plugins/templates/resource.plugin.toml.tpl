name = "{{name}}"
version = "0.1.0"
description = "A switchyard resource plugin"
kinds = ["resource"]
component = "{{name}}.wasm"
