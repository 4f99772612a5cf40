# {{name}}

A switchyard {{kind}} plugin in {{lang}}.

```sh
switchyard plugin build .                 # builds dist/{{name}}/ ({{tool}})
./test.sh                                 # builds, installs into a scratch data dir and tries it
switchyard plugin install dist/{{name}}   # installs it into ./switchyard-data
```

`wit/` is the `switchyard:plugin@0.1.0` contract; `plugin.toml` declares what the plugin
exports, what it may reach, and its limits. See docs/plugins.md for the {{lang}} guide and
its troubleshooting section.
