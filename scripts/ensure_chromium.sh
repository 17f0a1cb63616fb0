#!/usr/bin/env bash
# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
# Install it when missing and we may; otherwise say so and let the tests skip (or fail under CI).
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "warning: could not install chromium; browser tests will skip (or fail under CI=true)"
else
    echo "note: chromium is not installed and cannot be installed here; browser tests will skip"
fi
exit 0
