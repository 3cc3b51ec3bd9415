#!/usr/bin/env bash
# Builds the Debian package from this checkout (tracked and untracked-but-not-ignored files, so
# uncommitted work is included) in a scratch copy, then runs lintian on it.
# usage: scripts/build-deb.sh [OUT_DIR]     (default: build/deb)
# Prints the .deb's path last. DEB_BUILD_OPTIONS is passed through (e.g. nocheck, parallel=2).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$repo/build/deb}")
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$repo/scripts/install-deps.sh"
need=(debhelper dpkg-dev fakeroot lintian)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir "$work/vmmd"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | grep -zv '^shared/' |
   xargs -0 tar cf - --no-recursion) | tar xf - -C "$work/vmmd"
(cd "$work/vmmd" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}" \
   dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) || {
  tail -40 "$out/build.log"; echo "build-deb: dpkg-buildpackage failed (log: $out/build.log)" >&2; exit 1; }
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out/"
deb=$(ls "$out"/vmmd_*.deb | sort | tail -1)
echo "== lintian"
lintian --info "$deb" | tee "$out/lintian.txt" || true
echo "$deb"
