#!/usr/bin/env bash
# Run the production stack natively, without Docker: gunicorn (gunicorn.conf.py) behind
# nginx (nginx/templates/default.conf.template, rendered for loopback), both on 127.0.0.1.
#
#   scripts/stack.sh up       start both, wait until healthy through nginx, print the URLs
#   scripts/stack.sh down     stop both by PID (SIGTERM, then SIGKILL after a grace period)
#   scripts/stack.sh status   say whether they run
#   scripts/stack.sh stop-app | start-app   stop or start gunicorn alone (nginx stays up),
#                             (new model versions need neither: they roll in from
#                             MODEL_REPOSITORY while serving)
#   scripts/stack.sh render TEMPLATE OUT   render a template as the official nginx image does
#
# Environment: APP_PORT (15000), HTTP_PORT (18080), HTTPS_PORT (18443), MODEL_REPOSITORY,
# MODEL_PATH, WORKERS, SERVER_NAME (localhost), TLS_CERT/TLS_KEY (default: a self-signed certificate
# made on the first run), RATE_LIMIT (50r/s), RATE_LIMIT_BURST (100), KEY_RATE_LIMIT (50r/s),
# KEY_RATE_LIMIT_BURST (100), TLS_CLIENT_CA and MTLS_PORT (18444: client certificates),
# GRPC_PORT (gRPC through nginx's TLS; unset: no gRPC) and APP_GRPC_PORT (18501), MAX_INFLIGHT
# (128), STACK_DIR (where
# pids, logs and the nginx prefix go; default: a new directory under /tmp), STACK_STATE
# (file recording STACK_DIR; default run/stack.dir), VENV (.venv).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export APP_PORT=${APP_PORT:-15000} HTTP_PORT=${HTTP_PORT:-18080} HTTPS_PORT=${HTTPS_PORT:-18443}
# With GRPC_PORT, the app's workers serve gRPC on APP_GRPC_PORT, behind nginx on GRPC_PORT.
[ -z "${GRPC_PORT:-}" ] || export GRPC_BIND=127.0.0.1:${APP_GRPC_PORT:-18501}
venv=${VENV:-$root/.venv}
state=${STACK_STATE:-$root/run/stack.dir}

log() { echo "stack: $*" >&2; }

# Render like the official image's envsubst step (nginx/render-templates.sh).
render() { nginx/render-templates.sh "$@"; }

start_app() {  # start_app DIR: gunicorn with gunicorn.conf.py, trusting nginx on loopback
  local dir=$1
  touch "$dir/logs/app.log"
  stat -c %s "$dir/logs/app.log" >"$dir/app.log.offset"
  BIND=127.0.0.1:$APP_PORT TRUST_PROXY=true FORWARDED_ALLOW_IPS=127.0.0.1 \
    "$venv/bin/gunicorn" -c gunicorn.conf.py "app:create_app()" >>"$dir/logs/app.log" 2>&1 &
  echo $! >"$dir/gunicorn.pid"
}

wait_ready() {  # wait_ready URL PIDFILE...: until URL answers 200, or a process died
  local url=$1 deadline=$((SECONDS + ${READY_TIMEOUT:-120})) pidfile
  shift
  until curl -fsSk -o /dev/null "$url" 2>/dev/null; do
    for pidfile in "$@"; do
      pid_alive "$(cat "$pidfile")" || { log "$(basename "$pidfile" .pid) exited"; return 1; }
    done
    [ "$SECONDS" -lt "$deadline" ] || { log "$url not ready in time"; return 1; }
    sleep 0.3
  done
}

wait_workers() {  # wait_workers DIR: until every worker booted by start_app has its model
  # /readyz answers once one worker is up; the others accept nothing until they are.
  local dir=$1 deadline=$((SECONDS + ${READY_TIMEOUT:-120})) since text booted
  since=$(($(cat "$dir/app.log.offset") + 1))
  while :; do
    text=$(tail -c "+$since" "$dir/logs/app.log")
    booted=$(sed -n 's/.*Booting worker with pid: \([0-9]*\).*/\1/p' <<<"$text" | sort -u)
    [ -n "$booted" ] && [ -z "$(comm -23 <(echo "$booted") \
      <(sed -n 's/.*Worker ready (pid: \([0-9]*\)).*/\1/p' <<<"$text" | sort -u))" ] && return 0
    pid_alive "$(cat "$dir/gunicorn.pid")" || { log "gunicorn exited"; return 1; }
    [ "$SECONDS" -lt "$deadline" ] || { log "not every worker ready in time"; return 1; }
    sleep 0.3
  done
}

running_dir() {
  [ -f "$state" ] || { log "not running"; exit 1; }
  cat "$state"
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

stop_pid() {  # stop_pid PID NAME SIGNAL
  local pid=$1 name=$2 sig=$3 waited=0
  pid_alive "$pid" || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  while pid_alive "$pid" && [ "$waited" -lt "${STOP_GRACE:-30}0" ]; do
    sleep 0.1; waited=$((waited + 1))
  done
  if pid_alive "$pid"; then
    log "$name (pid $pid) did not stop; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

up() {
  if [ -f "$state" ] && pid_alive "$(cat "$(cat "$state")/gunicorn.pid" 2>/dev/null)"; then
    log "already running (scripts/stack.sh down first)"; exit 1
  fi
  command -v nginx >/dev/null || { log "nginx not found: apt-get install nginx"; exit 1; }
  [ -e /usr/lib/nginx/modules/ngx_http_perl_module.so ] || {
    log "nginx's perl module not found (it hashes API keys for the per-key rate limit):" \
        "apt-get install libnginx-mod-http-perl"; exit 1; }
  command -v envsubst >/dev/null || { log "envsubst not found: apt-get install gettext-base"; exit 1; }
  [ -x "$venv/bin/gunicorn" ] || scripts/bootstrap.sh runtime

  local dir=${STACK_DIR:-}
  if [ -z "$dir" ]; then
    dir=$(mktemp -d /tmp/h5serve-stack.XXXXXX)
    touch "$dir/.made-by-stack"
  fi
  # nginx workers run as an unprivileged user: the prefix must be reachable by them.
  chmod 755 "$dir"
  mkdir -p "$dir"/{logs,tmp,conf.d,acme,static}
  cp -R static/. "$dir/static/"

  if [ -z "${TLS_CERT:-}" ]; then
    scripts/make-cert.sh "$dir/certs" "${SERVER_NAME:-localhost}" >&2
    export TLS_CERT=$dir/certs/fullchain.pem TLS_KEY=$dir/certs/privkey.pem
  fi
  export APP_UPSTREAM=127.0.0.1:$APP_PORT APP_PROXY=h5serve_app RESOLVER=127.0.0.1 \
    SERVER_NAME=${SERVER_NAME:-localhost} \
    PUBLIC_HTTPS_PORT=${PUBLIC_HTTPS_PORT:-$HTTPS_PORT} \
    MAX_BODY_MIB=${MAX_BODY_MIB:-15} RATE_LIMIT=${RATE_LIMIT:-50r/s} \
    RATE_LIMIT_BURST=${RATE_LIMIT_BURST:-100} MAX_INFLIGHT=${MAX_INFLIGHT:-128} \
    KEY_RATE_LIMIT=${KEY_RATE_LIMIT:-50r/s} KEY_RATE_LIMIT_BURST=${KEY_RATE_LIMIT_BURST:-100} \
    PROXY_READ_TIMEOUT=${PROXY_READ_TIMEOUT:-60s} \
    STATIC_ROOT=$dir/static ACME_ROOT=$dir/acme
  # nginx listens on loopback only, like gunicorn (the templates take an address too)
  HTTP_PORT=127.0.0.1:$HTTP_PORT HTTPS_PORT=127.0.0.1:$HTTPS_PORT \
    render nginx/templates/default.conf.template "$dir/conf.d/default.conf"
  render nginx/templates/https-server.inc.template "$dir/conf.d/https-server.inc"
  render nginx/templates/tls.inc.template "$dir/conf.d/tls.inc"
  if [ -n "${GRPC_PORT:-}" ]; then  # gRPC through nginx's TLS
    APP_GRPC_UPSTREAM=$GRPC_BIND GRPC_PORT=127.0.0.1:$GRPC_PORT \
      render nginx/grpc/grpc.conf.template "$dir/conf.d/grpc.conf"
  fi
  if [ -n "${TLS_CLIENT_CA:-}" ]; then  # client certificates on their own port
    MTLS_PORT=127.0.0.1:${MTLS_PORT:-18444} \
      render nginx/mtls/mtls.conf.template "$dir/conf.d/mtls.conf"
  fi
  cp nginx/nginx.conf "$dir/nginx.conf"
  nginx -q -t -p "$dir/" -e logs/error.log -c nginx.conf

  start_app "$dir"
  nginx -p "$dir/" -e logs/error.log -c nginx.conf -g 'daemon off;' >>"$dir/logs/nginx.out" 2>&1 &
  echo $! >"$dir/nginx.master.pid"
  mkdir -p "$(dirname "$state")"
  echo "$dir" >"$state"

  if ! { wait_ready "https://127.0.0.1:$HTTPS_PORT/readyz" "$dir/gunicorn.pid" "$dir/nginx.master.pid" \
         && wait_workers "$dir"; }; then
    log "not healthy; last lines of the logs:"
    tail -n 20 "$dir/logs/app.log" "$dir/logs/error.log" >&2 2>/dev/null || true
    down
    exit 1
  fi
  cat <<EOF
h5serve is up (logs and pids in $dir)
  https://127.0.0.1:$HTTPS_PORT/      upload page (self-signed certificate unless TLS_CERT is set)
  http://127.0.0.1:$HTTP_PORT/       redirects to HTTPS
  http://127.0.0.1:$APP_PORT/       gunicorn directly
Stop with: scripts/stack.sh down
EOF
}

down() {
  [ -f "$state" ] || { log "not running"; return 0; }
  local dir
  dir=$(cat "$state")
  # Graceful: nginx finishes open requests on QUIT, gunicorn on TERM.
  stop_pid "$(cat "$dir/nginx.master.pid" 2>/dev/null)" nginx QUIT
  stop_pid "$(cat "$dir/gunicorn.pid" 2>/dev/null)" gunicorn TERM
  rm -f "$state"
  if [ -f "$dir/.made-by-stack" ]; then
    rm -rf "$dir"
  fi
  log "stopped"
}

status() {
  if [ -f "$state" ] && pid_alive "$(cat "$(cat "$state")/gunicorn.pid" 2>/dev/null)"; then
    echo "running (pids and logs in $(cat "$state"))"
  else
    echo "not running"; return 3
  fi
}

stop_app() {
  stop_pid "$(cat "$(running_dir)/gunicorn.pid" 2>/dev/null)" gunicorn TERM
}

restart_app() {
  local dir
  dir=$(running_dir)
  pid_alive "$(cat "$dir/gunicorn.pid" 2>/dev/null)" && { log "the app is running"; exit 1; }
  start_app "$dir"
  wait_ready "http://127.0.0.1:$APP_PORT/readyz" "$dir/gunicorn.pid" && wait_workers "$dir"
}

case "${1:-}" in
  up) up ;;
  stop-app) stop_app ;;
  start-app) restart_app ;;
  down) down ;;
  status) status ;;
  render) render "${2:?template}" "${3:?output}" ;;
  *) echo "usage: $0 up|down|status|stop-app|start-app|render TEMPLATE OUT" >&2; exit 2 ;;
esac
