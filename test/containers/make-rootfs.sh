#!/usr/bin/env bash
# Root filesystems for the pod tests (test/containers/), made from Debian
# packages with debootstrap, once per host (CI: .ci/setup-host calls this; a
# test run calls it too and it returns at once when they are current):
#
#   $DEST/base  Debian bookworm minbase plus what img's own image installs
#               (runc, uidmap, fuse-overlayfs, ca-certificates, git): the base
#               image the repository's Dockerfile is built on in the tests.
#   $DEST/pod   base made like img's image (Dockerfile): the user `user` (uid
#               1000, 65536-wide ranges in /etc/subuid and /etc/subgid), and
#               newuidmap/newgidmap with file capabilities instead of the setuid
#               bit (a setuid helper is refused in Docker's default capability
#               set; see the Dockerfile). Node and the checkout under test are
#               bind-mounted by the tests, so the code that runs is the current one.
#
# DEST is $IMG_POD_ROOTFS, else /var/cache/img-test. Run as root.
set -euo pipefail
RECIPE="3 bookworm minbase runc,uidmap,fuse-overlayfs,ca-certificates,git user:1000"
DEST=${IMG_POD_ROOTFS:-/var/cache/img-test}
MIRROR=${IMG_DEBIAN_MIRROR:-http://deb.debian.org/debian}

mkdir -p "$DEST"
exec 9>"$DEST/.lock"
flock 9
if [ "$(cat "$DEST/recipe" 2>/dev/null)" = "$RECIPE" ] && [ -d "$DEST/base" ] && [ -d "$DEST/pod" ]; then exit 0; fi
command -v debootstrap >/dev/null || { echo "make-rootfs: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }

rm -rf "$DEST/base" "$DEST/pod" "$DEST/recipe" "$DEST/tmp"
echo "make-rootfs: debootstrap bookworm into $DEST/base (about a minute and a half)" >&2
if ! debootstrap --variant=minbase --include=runc,uidmap,fuse-overlayfs,ca-certificates,git \
  bookworm "$DEST/tmp" "$MIRROR" >"$DEST/debootstrap.log" 2>&1; then
  tail -20 "$DEST/debootstrap.log" >&2
  exit 1
fi
# What debian:bookworm-slim leaves out: downloaded packages and index files.
rm -rf "$DEST/tmp/var/cache/apt/archives/"*.deb "$DEST/tmp/var/lib/apt/lists/"* "$DEST/tmp/var/log/"*.log
mv "$DEST/tmp" "$DEST/base"

# The pod: hard links to the base (pods never write their lower layer: they
# run on an overlay), with its own /etc for the user the image adds.
cp -al "$DEST/base" "$DEST/pod"
rm -rf "$DEST/pod/etc"
cp -a "$DEST/base/etc" "$DEST/pod/etc"
chroot "$DEST/pod" useradd --create-home --uid 1000 --user-group --shell /bin/bash user
echo "user:100000:65536" >"$DEST/pod/etc/subuid"
echo "user:100000:65536" >"$DEST/pod/etc/subgid"
for h in newuidmap:cap_setuid newgidmap:cap_setgid; do
  f="$DEST/pod/usr/bin/${h%%:*}"
  cp --remove-destination "$DEST/base/usr/bin/${h%%:*}" "$f" # its own inode: base keeps the setuid one
  chmod 0755 "$f"
  setcap "${h#*:}=ep" "$f"
done
mkdir -p "$DEST/pod/home/user/.local/share/img"
chroot "$DEST/pod" chown -R user:user /home/user
echo "$RECIPE" >"$DEST/recipe"
