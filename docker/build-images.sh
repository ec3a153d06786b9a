#!/usr/bin/env bash
# Builds the images of cairn and the three sample apps from binaries built on this machine,
# FROM scratch (docker/Dockerfile): no base image and no registry. Each image holds its
# program at /app/<name> and, for a dynamically linked build (cargo's default on glibc), the
# shared libraries `ldd` lists, at the same paths; a static build (musl) goes in alone. This
# is the layout `cairn demo --docker` builds its images in. Binaries are copied without their
# debug information (the images are smaller; the build's own files are untouched).
#
# Usage: docker/build-images.sh
# Environment: PROFILE [release] (cargo profile directory under target/), SKIP_CARGO [unset]
#   (use the binaries already built), CAIRN_IMAGE_PREFIX [cairn], CAIRN_IMAGE_TAG [latest],
#   CONTEXT_DIR [target/docker-context].
# Needs the docker CLI and an engine (scripts/docker-engine.sh starts one on Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=${PROFILE:-release}
PREFIX=${CAIRN_IMAGE_PREFIX:-cairn}
TAG=${CAIRN_IMAGE_TAG:-latest}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/$PROFILE
CTX=${CONTEXT_DIR:-$TARGET_DIR/docker-context}
APPS=(cairn stock-price weather portal)

say() { echo "build-images: $*" >&2; }

if [ -z "${SKIP_CARGO:-}" ]; then
    flag=()
    [ "$PROFILE" = release ] && flag=(--release)
    say "cargo build ${flag[*]} (cairn-cli, stock-price, weather, portal)"
    nice -n 10 cargo build -q "${flag[@]}" -p cairn-cli -p stock-price -p weather -p portal
fi

# put SRC DEST_IN_ROOTFS ROOTFS: copies a file into a root file system.
put() {
    mkdir -p "$3$(dirname "$2")"
    cp -L "$1" "$3$2"
}

rm -rf "$CTX"
for app in "${APPS[@]}"; do
    bin=$BIN/$app
    [ -x "$bin" ] || { say "missing $bin (build it, or unset SKIP_CARGO)"; exit 1; }
    rootfs=$CTX/$app
    put "$bin" "/app/$app" "$rootfs"
    if command -v strip >/dev/null; then strip --strip-debug "$rootfs/app/$app"; fi
    # ldd lines: "name => /path (addr)", "/lib64/ld-linux-x86-64.so.2 (addr)", or
    # "not a dynamic executable" / "statically linked" (nothing to copy).
    ldd "$bin" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; break } }' |
        while read -r lib; do put "$lib" "$lib" "$rootfs"; done
done

for app in "${APPS[@]}"; do
    image=$PREFIX/$app:$TAG
    # The classic builder warns that it is deprecated on every build: shown only on failure.
    DOCKER_BUILDKIT=0 docker build -q -f docker/Dockerfile --target "$app" -t "$image" "$CTX" \
        >/dev/null 2>"$CTX.build.log" || { cat "$CTX.build.log" >&2; exit 1; }
    say "built $image ($(du -sh "$CTX/$app" | cut -f1))"
done
