#!/usr/bin/env bash
# Set up everything h5serve needs on a fresh Debian/Ubuntu machine, idempotently.
#   scripts/bootstrap.sh runtime   # venv with requirements.txt (enough to serve)
#   scripts/bootstrap.sh dev       # + test tools and the Debian packages the tests use
#   scripts/bootstrap.sh triton    # the benchmark's Triton peer (.venv-tools/pytriton)
# Re-running is cheap: pip runs only when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-runtime}
venv=${VENV:-.venv}
python=${PYTHON:-python3}
case "$mode" in
  runtime) requirements=requirements.txt ;;
  dev) requirements=requirements-dev.txt ;;
  triton) requirements= ;;  # only the benchmark's Triton peer (make bench-triton)
  *) echo "usage: $0 runtime|dev|triton" >&2; exit 2 ;;
esac

# Debian packages the test suite drives for real (path to check : package).
apt_packages=()
if [ "$mode" = dev ]; then
  for pair in \
      /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz:dataset-fashion-mnist \
      /usr/sbin/nginx:nginx \
      /usr/lib/nginx/modules/ngx_http_perl_module.so:libnginx-mod-http-perl \
      /usr/bin/envsubst:gettext-base \
      /usr/bin/openssl:openssl \
      /usr/bin/curl:curl \
      /usr/bin/wrk:wrk \
      /usr/bin/promtool:prometheus \
      /usr/bin/chromium:chromium; do
    [ -e "${pair%%:*}" ] || apt_packages+=("${pair##*:}")
  done
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${apt_packages[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      echo "bootstrap: need root to install: apt-get install ${apt_packages[*]}" >&2
      exit 1
    fi
  fi
  $sudo apt-get update -qq
  # Packages with a daemon (nginx, prometheus) must not start it on install: the tests
  # start their own, on loopback, and stop them. policy-rc.d 101 is Debian's "don't".
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null && $sudo chmod +x "$guard"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${apt_packages[@]}" >/dev/null
  [ -z "$guard" ] || $sudo rm -f "$guard"
fi

install() {  # install VENV REQUIREMENTS STAMP_NAME [NO_DEPS_FILE]: pip only when files changed
  local target=$1 file=$2 stamp="$1/.installed-$3" no_deps=${4:-} digest
  local pip=("$target/bin/python" -m pip --disable-pip-version-check -q)
  [ -x "$target/bin/python" ] || "$python" -m venv "$target"
  digest=$(cat "$file" requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    echo "bootstrap: installing $file into $target (first run: a few minutes)"
    if [ -n "$no_deps" ] && "${pip[@]}" show tensorflow >/dev/null 2>&1; then
      # An older venv with the GPU build: it shares tensorflow/ with tensorflow-cpu.
      echo "bootstrap: replacing the GPU build of TensorFlow with tensorflow-cpu"
      "${pip[@]}" uninstall -y tensorflow tensorflow-cpu
    fi
    "${pip[@]}" install -r "$file"
    [ -z "$no_deps" ] || "${pip[@]}" install --no-deps -r "$no_deps"
    echo "$digest" > "$stamp"
  fi
  [ -z "$no_deps" ] || "$target/bin/python" scripts/check_tensorflow.py >/dev/null
}

if [ "$mode" = triton ]; then  # its own venv: nvidia-pytriton wants numpy<2
  install .venv-tools/pytriton bench/pytriton.txt pytriton
  exit 0
fi
install "$venv" "$requirements" "$mode" requirements-no-deps.txt
# Scanners whose dependencies clash with the app's get venvs of their own.
if [ "$mode" = dev ]; then
  for tool in sslyze gixy checkov kserve; do
    install ".venv-tools/$tool" "tests/tools/$tool.txt" "$tool"
  done
fi
