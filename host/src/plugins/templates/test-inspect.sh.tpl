#!/bin/sh
# Build {{name}}, install it into a scratch data directory and check what it
# offers: the same path an administrator's server takes. Run: ./test.sh
set -eu
cd "$(dirname "$0")"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
switchyard --data-dir "$data" plugin build .
switchyard --data-dir "$data" plugin install dist/{{name}} --grant
out="$(switchyard --data-dir "$data" plugin inspect {{name}})"
echo "$out"
case "$out" in
  *"{{expect}}"*) echo "ok: {{name}} offers its {{kind}}" ;;
  *) echo "FAILED: expected {{expect}}" >&2; exit 1 ;;
esac
