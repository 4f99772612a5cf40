name = "{{name}}"
version = "0.1.0"
description = "A switchyard tool plugin"
kinds = ["tool"]
component = "{{name}}.wasm"

# Everything is denied unless listed here and granted by an administrator:
# [capabilities]
# http = ["api.example.com"]   # hosts reachable over HTTP
# kv = true                    # a private key-value space
# secrets = ["api_token"]      # secrets readable with config::secret

[limits]
memory_mb = 64
timeout_ms = 10000
