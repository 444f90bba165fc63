#!/bin/sh
# Install the Debian packages the interop tests need (tests/test_devices.py, conformance/devices/), when
# they are missing. Idempotent and quiet: prints nothing when everything is already there, and shows the
# apt output only when something fails. Needs root (or sudo) for the install itself.
# Package list and --no-install-recommends: /work/shared/DEVICES.md (baresip pulls GTK, X11 and ffmpeg
# with recommends). Called from .ci/run.
set -eu

PACKAGES="sip-tester sipsak kamailio kamailio-tls-modules kamailio-websocket-modules baresip tshark"

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    case "$status" in
        ii*) ;;
        *) missing="$missing $pkg" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "install-debian.sh: need root to install:$missing" >&2
        exit 1
    fi
else
    SUDO=""
fi

log=$(mktemp "${TMPDIR:-/tmp}/install-debian.XXXXXX")
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer "no" without a prompt
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections >>"$log" 2>&1 || true
# shellcheck disable=SC2086  # $missing is a word list on purpose
if ! { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends $missing; } >>"$log" 2>&1; then
    echo "install-debian.sh: installing$missing failed:" >&2
    cat "$log" >&2
    exit 1
fi
