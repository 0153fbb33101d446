#!/usr/bin/env bash
# scripts/deps.sh: install what moor needs to build and test, and only what
# is missing. Idempotent: on a machine that has everything it changes nothing
# and runs no apt-get update.
#
#   MOOR_DEPS_EXTRA="pkg ..."   also install these (e.g. for benchmarks)
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    libuv1-dev libprotobuf-c-dev protobuf-c-compiler
    liblz4-dev libssl-dev libcmocka-dev libnghttp2-dev
    clang clang-format
    etcd-server etcd-client
    python3 python3-grpcio openssl curl
    iptables faketime libfaketime
)
# shellcheck disable=SC2206
pkgs+=(${MOOR_DEPS_EXTRA:-})

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all present"
    exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "deps: not root and no sudo; install by hand: ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# etcd-server's package starts a system etcd on 2379/2380 where an init
# system runs; moor's own tests start their own members, so stop it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
    $sudo systemctl stop etcd || true
    $sudo systemctl disable etcd || true
fi
