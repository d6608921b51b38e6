#!/bin/sh
# Entrypoint of the h5serve nginx image (nginx/Dockerfile): render every
# /etc/nginx/templates/*.template into the prefix's conf.d/ (as the official image does),
# check the result, then run nginx in the foreground with its logs on stdout/stderr.
# The root filesystem is read-only: the prefix, /run/nginx, is a tmpfs (docker-compose.yml).
set -eu
prefix=${NGINX_PREFIX:-/run/nginx}
mkdir -p "$prefix/conf.d" "$prefix/logs" "$prefix/tmp"
chmod 755 "$prefix"  # nginx's unprivileged workers must reach tmp/ (request bodies)
ln -sf /dev/stdout "$prefix/logs/access.log"
ln -sf /dev/stderr "$prefix/logs/error.log"
cp /etc/nginx/h5serve/nginx.conf "$prefix/nginx.conf"
for template in /etc/nginx/templates/*.template; do
  [ -e "$template" ] || continue
  name=$(basename "$template" .template)
  echo "entrypoint: rendering $template to $prefix/conf.d/$name" >&2
  /etc/nginx/h5serve/render-templates.sh "$template" "$prefix/conf.d/$name"
done
if [ -n "${TLS_CLIENT_CA:-}" ]; then  # client certificates on MTLS_PORT (nginx/mtls/)
  echo "entrypoint: client certificates from $TLS_CLIENT_CA on port ${MTLS_PORT:-8443}" >&2
  MTLS_PORT=${MTLS_PORT:-8443} /etc/nginx/h5serve/render-templates.sh \
    /etc/nginx/h5serve/mtls.conf.template "$prefix/conf.d/mtls.conf"
fi
if [ -n "${GRPC_PORT:-}" ]; then  # gRPC through TLS on GRPC_PORT (nginx/grpc/)
  echo "entrypoint: gRPC on port $GRPC_PORT to ${APP_GRPC_UPSTREAM:?APP_GRPC_UPSTREAM unset}" >&2
  /etc/nginx/h5serve/render-templates.sh /etc/nginx/h5serve/grpc.conf.template \
    "$prefix/conf.d/grpc.conf"
fi
nginx -q -t -p "$prefix/" -e stderr -c nginx.conf
exec nginx -p "$prefix/" -e stderr -c nginx.conf -g 'daemon off;'
