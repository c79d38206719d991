#!/usr/bin/env bash
# Builds the local test image `berth-test/busybox:latest` without pulling anything: no image
# registry is reachable on berth's development and CI machines, so the image is made from
# Debian's `busybox-static` package (installed with apt-get when /bin/busybox is missing or is
# the dynamically linked build) and imported with `docker import`.
#
# The image holds /bin/busybox plus symlinks for the applets the tests use (sh, sleep, httpd,
# echo, cat, wget, nc, true, false, kill, ls, env, ...), /www/index.html for `httpd -h /www`,
# and a minimal /etc/passwd and /etc/group. Its default command is `sh`.
#
# Usage: scripts/build-test-image.sh [--force]
#   Idempotent: does nothing when the image already exists, unless --force is given.
# .ci/run (through the tests) calls it; the berth-agent Docker tests call it when the image is
# missing.
set -euo pipefail

IMAGE="berth-test/busybox:latest"
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE already exists (use --force to rebuild)"
  exit 0
fi

is_static_busybox() {
  [ -x /bin/busybox ] || return 1
  # A static binary has no program interpreter; `ldd` says so (wording varies by libc).
  ! ldd /bin/busybox 2>/dev/null | grep -q '=>'
}

if ! is_static_busybox; then
  echo "installing busybox-static (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -qq busybox-static >/dev/null; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq busybox-static >/dev/null
  fi
  is_static_busybox || { echo "/bin/busybox is still not a static binary" >&2; exit 1; }
fi

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT

mkdir -p "$ROOTFS"/{bin,etc,tmp,www,proc,sys,dev,root}
chmod 1777 "$ROOTFS/tmp"
cp /bin/busybox "$ROOTFS/bin/busybox"
for applet in sh ash sleep httpd echo cat wget nc true false kill ls env printf test \
  mkdir rm cp mv ps grep head tail date id hostname yes dd seq sync uname wc sed awk; do
  ln -s busybox "$ROOTFS/bin/$applet"
done
ln -s busybox "$ROOTFS/bin/["
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOTFS/etc/group"
echo "berth test page" >"$ROOTFS/www/index.html"

tar -C "$ROOTFS" --owner=0 --group=0 --numeric-owner -cf - . |
  docker import --change 'CMD ["sh"]' --change 'ENV PATH=/bin' - "$IMAGE" >/dev/null

docker run --rm "$IMAGE" sh -c 'echo ok' | grep -qx ok
echo "built $IMAGE"
