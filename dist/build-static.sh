#!/usr/bin/env bash
# Builds one statically linked sumpool for Linux x86-64 (glibc linked in with crt-static; no
# dynamic loader, no shared library needed at run time):
#
#   dist/build-static.sh
#
# The binary lands in target/x86_64-unknown-linux-gnu/dist/sumpool (the `dist` profile of
# Cargo.toml: the release profile, stripped), which is what the Containerfile copies. The
# release assets the README's CI recipe downloads are written beside it, in
# target/release-assets: sumpool-x86_64-linux and sumpool-x86_64-linux.sha256 (a line that
# `sha256sum -c` checks in the download directory). Prints the size and SHA-256. Needs the static C library (Debian: libc6-dev, as build-essential
# installs it). The target is named explicitly so that crt-static applies to sumpool only,
# not to the build scripts and proc macros cargo runs on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --locked --quiet --profile dist --target "$target"
bin=target/$target/dist/sumpool
if LC_ALL=C readelf -l "$bin" 2>/dev/null | grep -q 'INTERP'; then
  echo "build-static.sh: $bin asks for a dynamic loader" >&2
  exit 1
fi
assets=target/release-assets
mkdir -p "$assets"
cp "$bin" "$assets/sumpool-x86_64-linux"
(cd "$assets" && sha256sum sumpool-x86_64-linux > sumpool-x86_64-linux.sha256 &&
  sha256sum --quiet -c sumpool-x86_64-linux.sha256)
echo "$bin: $(stat -c %s "$bin") bytes"
cat "$assets/sumpool-x86_64-linux.sha256"
