#!/usr/bin/env bash
# Quick start, on a fresh Debian machine with Node 20, as root or with sudo:
#   bash examples/quickstart.sh
# Installs what img needs, then — as an unprivileged user — starts a local
# registry holding a busybox base image made from Debian's busybox-static,
# builds examples/hello with `img build`, lists, pushes and exports it, and
# runs the built image's command in a rootless container.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart: run as root or with sudo (it installs Debian packages)" >&2
  exit 1
fi
bash .ci/setup-host
DEMO_USER=${SUDO_USER:-${IMG_TEST_USER:-imgtest}}
[ "$DEMO_USER" = root ] && DEMO_USER=${IMG_TEST_USER:-imgtest}

[ -d node_modules ] && [ -f dist/img.js ] && [ -f build/Release/img_addon.node ] && [ -f build/Release/img-launch ] || npm ci --no-audit --no-fund
d=$REPO
while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
chmod -R o+rX "$REPO" 2>/dev/null || true

WORK=$(mktemp -d /tmp/img-quickstart.XXXXXX)
chown "$DEMO_USER" "$WORK"
RUNTIME_DIR="$WORK/run"
install -d -o "$DEMO_USER" -m 0700 "$RUNTIME_DIR"
echo "== running the demo as unprivileged user '$DEMO_USER' (work dir $WORK)"
exec runuser -u "$DEMO_USER" -- env HOME="$(getent passwd "$DEMO_USER" | cut -d: -f6)" \
  XDG_RUNTIME_DIR="$RUNTIME_DIR" WORK="$WORK" REPO="$REPO" bash "$REPO/examples/demo.sh"
