#!/usr/bin/env bash
# moord_tls.sh MOORD: the client port over TLS with client-cert-auth, as
# etcd's --cert-file/--key-file/--trusted-ca-file/--client-cert-auth: a
# client with a certificate from the trusted CA is served; one without a
# certificate, or with one from another CA, is refused. Certificates are
# made here with the openssl CLI (nothing secret is committed).
set -euo pipefail
moord=$(realpath "$1")
export ETCDCTL_API=3
work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*"; tail -n 20 "$work/log"; exit 1; }
cd "$work"
ca() { # ca NAME
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" \
        -days 2 -subj "/CN=$1" 2>/dev/null
}
cert() { # cert NAME CA [SAN]
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" \
        -subj "/CN=$1" 2>/dev/null
    if [ -n "${3:-}" ]; then printf 'subjectAltName=%s\n' "$3" >"$1.ext"; else : >"$1.ext"; fi
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
        -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
}
ca ca
ca otherca
cert server ca "IP:127.0.0.1,DNS:localhost"
cert client ca
cert stranger otherca
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(port)
pport=$(port)
"$moord" --name m1 --data-dir "$work/data" \
    --cert-file server.pem --key-file server.key \
    --trusted-ca-file ca.pem --client-cert-auth \
    --listen-client-urls "https://127.0.0.1:$cport" \
    --advertise-client-urls "https://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" \
    --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "m1=http://127.0.0.1:$pport" >"$work/log" 2>&1 &
pid=$!
E="etcdctl --endpoints=https://127.0.0.1:$cport --cacert ca.pem --dial-timeout=2s --command-timeout=3s"
ok=""
for _ in $(seq 1 50); do
    if [ "$($E --cert client.pem --key client.key put tls yes 2>/dev/null)" = OK ]; then ok=1; break; fi
    sleep 0.1
done
[ -n "$ok" ] || fail "a client with a trusted certificate was not served"
[ "$($E --cert client.pem --key client.key get tls --print-value-only)" = yes ] || fail "get over TLS"
if $E get tls >/dev/null 2>&1; then fail "a client without a certificate was served"; fi
if $E --cert stranger.pem --key stranger.key get tls >/dev/null 2>&1; then
    fail "a client with another CA's certificate was served"
fi
if etcdctl --endpoints="http://127.0.0.1:$cport" --dial-timeout=1s --command-timeout=2s get tls >/dev/null 2>&1; then
    fail "a plaintext client was served on the TLS port"
fi
kill -0 "$pid" || fail "moord died"
kill -TERM "$pid"
wait "$pid" || fail "moord exited non-zero"
pid=""
echo "1 passed, 0 failed"
