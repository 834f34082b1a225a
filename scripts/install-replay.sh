#!/bin/sh
# Install ReplayWeb.page (npm package `replaywebpage`, AGPL-3.0), which `osint-capture replay`
# and the replay tests serve on 127.0.0.1: its ui.js and sw.js, and its licence, go into
# $VENV/share/osint-capture/replaywebpage/. The version is pinned and the package's SHA-256
# checked, so every machine serves the same code. Needs npm (installed with apt-get if missing).
set -eu
venv=${1:-.venv}
version=2.5.3
sha256=b7d35c39c4da9b7121c5a393911d8675d4cc6f19513c380191e16b086bea812c
dest="$venv/share/osint-capture/replaywebpage"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v npm >/dev/null 2>&1; then
    as_root apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q npm >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "replaywebpage@$version" >/dev/null)
tarball="$work/replaywebpage-$version.tgz"
echo "$sha256  $tarball" | sha256sum -c --quiet - || {
    echo "replaywebpage-$version.tgz does not have the pinned SHA-256; not installed" >&2
    exit 1
}
tar -xzf "$tarball" -C "$work" package/ui.js package/sw.js package/LICENSE package/package.json
mkdir -p "$dest"
for f in ui.js sw.js LICENSE package.json; do cp "$work/package/$f" "$dest/$f"; done
echo "$version" > "$dest/VERSION"
echo "replay: ReplayWeb.page $version in $dest"
