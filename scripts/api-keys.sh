#!/usr/bin/env bash
# Manage the API keys file (AUTH=keys). The file holds only SHA-256 digests of the keys:
# a new key is printed once, here, and is not stored anywhere.
#
#   scripts/api-keys.sh add NAME [admin]   make a key for NAME, print it, store its digest
#   scripts/api-keys.sh revoke NAME        remove NAME's keys
#   scripts/api-keys.sh list               the names (and which are admin)
#
# Environment: API_KEYS_FILE (secrets/api-keys). Every change writes a new file and renames
# it into place, so the service (which re-reads the file within a second) never sees half
# of one; mount the file's folder, not the file, into a container (docs/operations.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
file=${API_KEYS_FILE:-$root/secrets/api-keys}

replace() {  # replace: stdin becomes the new keys file, atomically
  mkdir -p "$(dirname "$file")"
  local next
  next=$(mktemp "$(dirname "$file")/.api-keys.XXXXXX")
  cat >"$next"
  chmod 644 "$next"  # digests only; the app's non-root user in the container must read it
  mv -f "$next" "$file"
}

case "${1:-}" in
  add)
    name=${2:?usage: scripts/api-keys.sh add NAME [admin]}
    [[ "$name" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || { echo "api-keys: NAME is letters, digits, _ . -" >&2; exit 2; }
    key=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
    digest=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
    { [ -f "$file" ] && cat "$file"; echo "$name sha256:$digest${3:+ $3}"; } | replace
    echo "$key"
    echo "api-keys: added $name to $file; the key above is shown only now" >&2
    ;;
  revoke)
    name=${2:?usage: scripts/api-keys.sh revoke NAME}
    [ -f "$file" ] || { echo "api-keys: no $file" >&2; exit 1; }
    awk -v name="$name" '$1 != name' "$file" | replace
    echo "api-keys: revoked $name in $file" >&2
    ;;
  list)
    [ -f "$file" ] || { echo "api-keys: no $file" >&2; exit 1; }
    awk '!/^[[:space:]]*(#|$)/ { print $1 ($NF == "admin" ? " (admin)" : "") }' "$file"
    ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
