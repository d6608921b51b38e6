#!/bin/sh
# Create a self-signed TLS certificate for a first run, unless one is already there.
#   scripts/make-cert.sh DIR [NAME]   -> DIR/fullchain.pem, DIR/privkey.pem
# NAME (default localhost) goes into the subjectAltName with localhost and 127.0.0.1:
# current clients ignore the CN. Replace with real certificates for production (docs/deployment.md).
set -eu
dir=${1:?usage: make-cert.sh DIR [NAME]}
name=${2:-localhost}
mkdir -p "$dir"
if [ -s "$dir/fullchain.pem" ] && [ -s "$dir/privkey.pem" ]; then
  echo "make-cert: $dir already has a certificate; keeping it"
  exit 0
fi
san="DNS:$name,DNS:localhost,IP:127.0.0.1"
case "$name" in
  *[!0-9.]*) ;;
  *) san="IP:$name,DNS:localhost,IP:127.0.0.1" ;;
esac
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -sha256 \
  -subj "/CN=$name" -addext "subjectAltName=$san" \
  -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null
chmod 644 "$dir/fullchain.pem"
echo "make-cert: wrote a self-signed certificate for $name to $dir"
