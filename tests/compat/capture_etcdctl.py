#!/usr/bin/python3
"""capture_etcdctl.py: record the request bytes Debian's etcdctl 3.4 sends.

Starts a gRPC server on 127.0.0.1 (python3-grpcio, an independent gRPC
implementation) whose generic handler accepts any method, keeps the raw
request bytes and answers with an empty message (valid for every etcd
response type). Then runs etcdctl commands against it, one at a time, and
writes for each command NAME:

    OUT/NAME.method   the full gRPC method path etcdctl called
    OUT/NAME.bin      the request message bytes, exactly as sent

tests/unit/test_proto_etcdctl_wire.c decodes these with moor's generated
code and checks every field. Usage:

    capture_etcdctl.py --etcdctl /usr/bin/etcdctl --out DIR
"""
import argparse
import os
import subprocess
import sys
import threading
from concurrent import futures

import grpc

# name -> (etcdctl arguments, stdin text or None)
COMMANDS = {
    "put": (["put", "foo", "bar", "--lease=1234abcd", "--prev-kv"], None),
    "get": (["get", "a", "z", "--limit=10", "--rev=7", "--order=DESCEND",
             "--sort-by=MODIFY", "--keys-only"], None),
    "get_prefix": (["get", "pre", "--prefix", "--consistency=s"], None),
    "del": (["del", "k1", "k9", "--prev-kv"], None),
    "del_from_key": (["del", "k", "--from-key"], None),
    "txn": (["txn"],
            'mod("key1") > "0"\n'
            'value("key2") = "v2"\n'
            'create("key3") < "9"\n'
            'ver("key4") != "3"\n'
            '\n'
            'put key1 "new"\n'
            'get key2\n'
            '\n'
            'del key1\n'
            '\n'),
}


class Recorder(grpc.GenericRpcHandler):
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []

    def service(self, handler_call_details):
        method = handler_call_details.method

        def unary(request, context):
            with self.lock:
                self.calls.append((method, request))
            return b""

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=None, response_serializer=None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--etcdctl", default="etcdctl")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    rec = Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((rec,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    failed = 0
    try:
        for name, (argv, stdin) in COMMANDS.items():
            with rec.lock:
                rec.calls.clear()
            env = dict(os.environ, ETCDCTL_API="3")
            cmd = [args.etcdctl, "--endpoints=127.0.0.1:%d" % port,
                   "--dial-timeout=5s", "--command-timeout=5s"] + argv
            p = subprocess.run(cmd, input=stdin, capture_output=True,
                               text=True, env=env, timeout=30)
            with rec.lock:
                calls = list(rec.calls)
            if not calls:
                print("capture: %s: no request seen (etcdctl exit %d: %s)"
                      % (name, p.returncode, p.stderr.strip()))
                failed += 1
                continue
            method, body = calls[-1]
            with open(os.path.join(args.out, name + ".method"), "w") as f:
                f.write(method + "\n")
            with open(os.path.join(args.out, name + ".bin"), "wb") as f:
                f.write(body)
            print("capture: %-18s %-32s %4d bytes" % (name, method, len(body)))
    finally:
        server.stop(0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
