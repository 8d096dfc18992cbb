#!/usr/bin/env bash
# Debian's Chromium for the portal's browser tests (Playwright drives it; Playwright's own
# browser downloads are never used). Quick no-op when /usr/bin/chromium is present.
# Prints the executable's path. Debian/Ubuntu (apt-get) only; needs root or sudo.
# apt-get update runs only when the install fails without it (a stale or empty list).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [[ -x "$CHROMIUM" ]]; then
  echo "$CHROMIUM"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed and no apt-get here: install Chromium by hand" >&2
  exit 1
fi
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "chromium: not installed: run as root, or apt-get install chromium" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Fonts so pages render text the way people see it (the screenshots are read by people).
packages=(chromium fonts-dejavu-core fonts-liberation)
install=("${sudo[@]}" apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300)
echo "chromium: installing ${packages[*]}" >&2
if ! "${install[@]}" "${packages[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq -o DPkg::Lock::Timeout=300 >/dev/null
  "${install[@]}" "${packages[@]}" >/dev/null
fi
[[ -x "$CHROMIUM" ]] || { echo "chromium: $CHROMIUM still missing" >&2; exit 1; }
echo "$CHROMIUM"
