#!/bin/sh
# Build {{name}}, install it into a scratch data directory and call it: the
# same path an administrator's server takes. Run: ./test.sh
set -eu
cd "$(dirname "$0")"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
switchyard --data-dir "$data" plugin build .
switchyard --data-dir "$data" plugin install dist/{{name}} --grant
out="$(switchyard --data-dir "$data" tool call {{name}}/greet '{"name": "Ada"}')"
echo "$out"
case "$out" in
  *"Hello, Ada!"*) echo "ok: {{name}}/greet answers" ;;
  *) echo "FAILED: expected Hello, Ada!" >&2; exit 1 ;;
esac
