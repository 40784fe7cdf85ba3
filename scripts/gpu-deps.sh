#!/usr/bin/env bash
# Prepares, on a Debian 12 machine with apt (the development machine), the build dependencies that a lent
# GPU machine may lack, for scripts/gpu-check.sh to use there: the GPU machines have the CUDA toolkit,
# CMake, ninja, a C++ compiler and PyTorch, reach no package registry, and may not have opdev's Debian
# packages (DLPack, CLI11, nlohmann-json, PCRE2, utf8proc, GoogleTest, pkg-config).
#
#   scripts/gpu-deps.sh [DIR]      default DIR: .cache/gpu-deps (ignored by git)
#
# Downloads the packages with `apt-get download` (no installation), unpacks each with `dpkg -x` into
# DIR/root (never into /), makes the pkg-config files relocatable (prefix=${pcfiledir}/../../..) and writes
# DIR/bin/pkg-config, a wrapper of the unpacked pkgconf. About 6 MB. gpu-check.sh uses DIR when a
# dependency is missing on the machine it runs on: carry it with the device call (carry: .cache/gpu-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.cache/gpu-deps}
arch=$(dpkg --print-architecture)
if [ "$arch" != amd64 ]; then
  echo "gpu-deps: this machine is $arch; the GPU machines are amd64 (x86-64): run this on an amd64 Debian" >&2
  exit 1
fi
# Headers and CMake packages (architecture-independent or static), the shared libraries the build links
# (PCRE2 8-bit, utf8proc) and pkgconf for machines without pkg-config.
packages=(libdlpack-dev libcli11-dev nlohmann-json3-dev libpcre2-dev libpcre2-8-0 libutf8proc-dev libutf8proc2
          libgtest-dev pkgconf-bin libpkgconf3)
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/debs" "$dir.tmp/root" "$dir.tmp/bin"
(cd "$dir.tmp/debs" && apt-get download "${packages[@]}" >/dev/null) || {
  echo "gpu-deps: apt-get download failed (run 'apt-get update' first?)" >&2
  exit 1
}
for deb in "$dir.tmp"/debs/*.deb; do dpkg -x "$deb" "$dir.tmp/root"; done
rm -rf "$dir.tmp/root/usr/share/doc" "$dir.tmp/root/usr/share/man" "$dir.tmp/root/usr/src"
# Relocatable pkg-config files: the prefix is found from the .pc file's own location.
find "$dir.tmp/root" -name '*.pc' -print0 | while IFS= read -r -d '' pc; do
  rel=$(realpath --relative-to="$(dirname "$pc")" "$dir.tmp/root/usr")
  sed -i "s|^prefix=.*|prefix=\${pcfiledir}/$rel|" "$pc"
done
cat > "$dir.tmp/bin/pkg-config" <<'EOF'
#!/bin/sh
# pkgconf unpacked from Debian 12 (scripts/gpu-deps.sh); its library lives beside it.
here=$(cd "$(dirname "$0")/.." && pwd)
LD_LIBRARY_PATH="$here/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/root/usr/bin/pkgconf" "$@"
EOF
chmod +x "$dir.tmp/bin/pkg-config"
{
  echo "# unpacked by scripts/gpu-deps.sh on $(date -u +%Y-%m-%dT%H:%MZ) from Debian $(cat /etc/debian_version)"
  for deb in "$dir.tmp"/debs/*.deb; do dpkg-deb -f "$deb" Package Version | paste -sd' '; done
} > "$dir.tmp/MANIFEST"
rm -rf "$dir.tmp/debs" "$dir"
mv "$dir.tmp" "$dir"
echo "gpu-deps: $(du -sh "$dir" | cut -f1) in $dir:"
sed 1d "$dir/MANIFEST" | sed 's/^/  /'
