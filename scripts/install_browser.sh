#!/bin/sh
# The headless browser of the /compare page's test: Debian's chromium and its chromedriver.
# Installed when /usr/bin/chromedriver is missing and we are root; otherwise the browser test
# is skipped and says how to install it. Never fails the install.
if [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
        || echo "could not install chromium chromium-driver: the browser test will be skipped" >&2
else
    echo "no /usr/bin/chromedriver: the browser test will be skipped (as root: apt-get install -y chromium chromium-driver)" >&2
fi
exit 0
