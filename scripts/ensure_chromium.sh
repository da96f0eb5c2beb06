#!/bin/sh
# Install headless Chromium and its WebDriver (Debian packages) for the HTML-report tests.
# Idempotent: does nothing when both are already there. Needs root (or sudo) and a package mirror.
set -e
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "ensure_chromium: chromium/chromedriver missing and not root: the HTML browser test will be skipped" >&2
        exit 0
    fi
fi
echo "ensure_chromium: installing chromium and chromium-driver (Debian packages)" >&2
# apt may be busy with another installer: wait for its lock rather than fail
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
