#!/bin/sh
# Install a Chromium that Playwright can drive.
#   1. Playwright's own download (`playwright install chromium`), the normal path.
#   2. Where that cannot download (closed networks), the distribution's packages:
#      Debian's `chromium-headless-shell` (binary /usr/lib/chromium/chromium-headless-shell),
#      else Debian/Ubuntu `chromium` (binary /usr/lib/chromium/chromium).
#      The headless shell is what Playwright itself runs headless from its own download:
#      the engine without the desktop browser around it, several times quicker to open
#      a page and take a screenshot (docs/PERFORMANCE.md).
# Also installs libnss3-tools (certutil), which the HTTPS tests use to trust a throwaway CA,
# and a colour emoji font so screenshots show emoji.
set -u
venv=${1:-.venv}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    if [ ! -f /tmp/.osint-capture-apt-updated ]; then
        as_root apt-get update -q >/dev/null && touch /tmp/.osint-capture-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "$@" >/dev/null
}
command -v certutil >/dev/null 2>&1 || apt_install libnss3-tools || echo "note: certutil not installed; HTTPS tests will be skipped" >&2
# Screenshots must show emoji as the public sees them, not as empty boxes.
if ! fc-list 2>/dev/null | grep -qi emoji; then
    apt_install fonts-noto-color-emoji || echo "note: no colour emoji font installed; screenshots will show boxes for emoji" >&2
fi
if "$venv/bin/playwright" install chromium >/dev/null 2>&1; then
    echo "browser: Playwright's Chromium"
    exit 0
fi
echo "browser: Playwright could not download Chromium; using the distribution's package" >&2
shell=/usr/lib/chromium/chromium-headless-shell
[ -x "$shell" ] || apt_install chromium-headless-shell || echo "note: no chromium-headless-shell package; trying chromium" >&2
if [ -x "$shell" ]; then echo "browser: $shell"; exit 0; fi
for b in /usr/lib/chromium/chromium /usr/lib/chromium-browser/chromium-browser; do
    if [ -x "$b" ]; then echo "browser: $b"; exit 0; fi
done
apt_install chromium || apt_install chromium-browser || { echo "error: no Chromium could be installed" >&2; exit 1; }
echo "browser: distribution Chromium installed"
