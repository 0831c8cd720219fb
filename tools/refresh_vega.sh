#!/usr/bin/env bash
# Refreshes the vendored Vega, Vega-Lite and vega-embed builds in third_party/vega from the npm registry
# (the only time anything is downloaded; builds and reports never fetch). Usage:
#   bash tools/refresh_vega.sh [VEGA_VERSION VEGA_LITE_VERSION VEGA_EMBED_VERSION]
# Writes the UMD builds, each package's LICENSE and VERSIONS (versions and sha256 of the tarballs).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/third_party/vega"
vega="${1:-6.4.0}" lite="${2:-6.5.0}" embed="${3:-7.3.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "vega@$vega" "vega-lite@$lite" "vega-embed@$embed" >/dev/null
mkdir -p "$dest"
: >"$work/VERSIONS"
for spec in "vega:$vega:build/vega.min.js" "vega-lite:$lite:build/vega-lite.min.js" \
  "vega-embed:$embed:build/vega-embed.min.js"; do
  IFS=: read -r name version file <<<"$spec"
  tgz="$name-$version.tgz"
  mkdir -p "x-$name"
  tar xzf "$tgz" -C "x-$name"
  cp "x-$name/package/$file" "$dest/$(basename "$file")"
  cp "x-$name/package/LICENSE" "$dest/LICENSE.$name"
  echo "$name $version $(sha256sum "$tgz" | cut -d' ' -f1) npm:$name@$version/$file" >>"$work/VERSIONS"
done
cp "$work/VERSIONS" "$dest/VERSIONS"
echo "refreshed $dest:"
cat "$dest/VERSIONS"
