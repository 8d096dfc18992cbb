#!/usr/bin/env bash
# Installs the command-line tools the deployment tests use, when they are missing:
#   docker-compose  validates docker-compose.yml offline (`docker-compose config -q`)
#   kcat            a Kafka client for the Kafka test suites
# Quick no-op when both are present. Debian/Ubuntu (apt-get) only; needs root or sudo.
# apt-get update runs only when the install fails without it (a stale or empty list).
set -euo pipefail

missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: missing ${missing[*]} and no apt-get here: install them by hand" >&2
  exit 1
fi
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "ensure-tools: missing ${missing[*]}: run as root, or apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# No recommends: docker-compose would otherwise pull in a whole Docker engine.
install=("${sudo[@]}" apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300)
echo "ensure-tools: installing ${missing[*]}" >&2
if ! "${install[@]}" "${missing[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq -o DPkg::Lock::Timeout=300 >/dev/null
  "${install[@]}" "${missing[@]}" >/dev/null
fi
for tool in "${missing[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ensure-tools: $tool still missing" >&2; exit 1; }
done
