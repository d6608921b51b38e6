#!/bin/sh
# Render an nginx template as the official nginx image's 20-envsubst-on-templates.sh does:
# substitute only the variables that are defined and match NGINX_ENVSUBST_FILTER (default:
# the names the template uses), so nginx's own $variables survive. Fail on any ${...} left.
#   nginx/render-templates.sh TEMPLATE OUT
# Used by scripts/stack.sh (native runs) and by the nginx image's entrypoint.
set -eu
template=$1 out=$2
names=$(grep -o '\${[A-Z_][A-Z0-9_]*}' "$template" | tr -d '${}' | sort -u | paste -sd'|')
filter=${NGINX_ENVSUBST_FILTER:-^($names)\$}
# shellcheck disable=SC2016,SC2046
defined=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" </dev/null))
envsubst "$defined" <"$template" >"$out"
if grep -n '\${' "$out" >&2; then
  echo "render-templates: unset variables left in $out (above)" >&2
  exit 1
fi
