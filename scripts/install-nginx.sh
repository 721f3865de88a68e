#!/usr/bin/env bash
# Install Debian's nginx for the reverse-proxy tests (tests/reliability/test_proxy.py).
# The tests start their own nginx on loopback ports with a generated configuration;
# the system service is never used. Idempotent: does nothing when nginx is there.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    echo "nginx already installed: $(/usr/sbin/nginx -v 2>&1 || true)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-nginx.sh: run as root (or install sudo) to apt-get install nginx" >&2
        exit 1
    fi
fi

# The package's post-install script would start the system service on port 80;
# the tests need only the binary. policy-rc.d exit 101 = "do not start services"
# (already the case in most container images; added only for this install).
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 0755 "$POLICY"
    ADDED_POLICY=1
fi
cleanup() { if [ -n "$ADDED_POLICY" ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends nginx
/usr/sbin/nginx -v
