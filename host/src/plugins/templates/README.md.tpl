# {{name}}

A switchyard {{kind}} plugin.

```sh
switchyard plugin build .                 # builds dist/{{name}}/ (needs: rustup target add wasm32-wasip2)
./test.sh                                 # builds, installs into a scratch data dir and tries it
switchyard plugin install dist/{{name}}   # installs it into ./switchyard-data
switchyard plugin inspect {{name}}
```

`sdk/` is a vendored copy of `switchyard-plugin-sdk` and `wit/` the
`switchyard:plugin@0.1.0` contract; `plugin.toml` declares what the plugin
exports, what it may reach, and its limits.
