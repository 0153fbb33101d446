"""gRPC calls to one moord member, and the history record of each.

One Conn is one grpc channel to one member's client address ("host:port":
127.0.0.1, or a member's address inside the harness's own network
namespaces), used by one thread at a time.  execute() sends one history
operation, fills in its outcome and response fields as docs/chaos.md §1
says, and never raises for what the cluster answered: a definite error
is `fail`, anything that may have taken effect is `info`.

Which gRPC statuses are definite (the request was refused before any
proposal): INVALID_ARGUMENT, OUT_OF_RANGE, NOT_FOUND, PERMISSION_DENIED,
UNAUTHENTICATED.  Every other status, a deadline, a reset connection is
indeterminate.  A response that does not decode is a harness or moord bug
and raises.
"""

import grpc

from . import pb

KV = "/etcdserverpb.KV/"
MAINT = "/etcdserverpb.Maintenance/"
CLUSTER = "/etcdserverpb.Cluster/"

DEFINITE = frozenset([
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED])

# Reconnect quickly after a member restarts: grpc's default backoff grows
# to two minutes, longer than a run.  Not grpc.min_reconnect_backoff_ms:
# grpc also takes it as the deadline of each connection attempt, and a
# busy member that needs more than that for the HTTP/2 handshake then
# never gets a connection at all.
OPTIONS = [("grpc.enable_retries", 0),
           ("grpc.initial_reconnect_backoff_ms", 50),
           ("grpc.max_reconnect_backoff_ms", 300),
           ("grpc.max_receive_message_length", 64 << 20)]


class Definite(Exception):
    """The request certainly did not take effect."""


class Indefinite(Exception):
    """The request may have taken effect, now or later."""


class Conn:
    def __init__(self, addr, timeout_s):
        self.addr = addr
        self.timeout_s = timeout_s
        self.channel = None
        self._open()

    def _open(self):
        self.channel = grpc.insecure_channel(self.addr,
                                             options=OPTIONS)
        self._calls = {}

    def close(self):
        self.channel.close()

    def call(self, path, req, timeout_s=None):
        """Unary call; returns the response bytes.  Raises Definite or
        Indefinite."""
        c = self._calls.get(path)
        if c is None:
            c = self.channel.unary_unary(path)
            self._calls[path] = c
        try:
            return c(req, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            msg = "%s: %s" % (code.name if code else "error",
                              e.details() if hasattr(e, "details") else e)
            if code in DEFINITE:
                raise Definite(msg) from None
            if code == grpc.StatusCode.UNAVAILABLE:
                # python3-grpcio 1.51's pick_first leaves a channel whose
                # connect failed in TRANSIENT_FAILURE for good once the
                # backoff ends (the subchannel goes IDLE, nothing asks it
                # to connect): start over with a new channel.
                self.channel.close()
                self._open()
            raise Indefinite(msg) from None

    # -------------------------------------------------- maintenance calls

    def status(self, timeout_s=None):
        """(member_id, leader, raft_term, applied_index)."""
        return pb.status_resp(self.call(MAINT + "Status", b"", timeout_s))

    # ------------------------------------------------------ cluster calls

    def member_list(self, timeout_s=None):
        return pb.member_list_resp(self.call(CLUSTER + "MemberList", b"",
                                             timeout_s))

    def member_add(self, peer_urls, learner=False, timeout_s=None):
        """(the new member, [every member])."""
        return pb.member_add_resp(self.call(
            CLUSTER + "MemberAdd", pb.member_add_req(peer_urls, learner),
            timeout_s))

    def member_remove(self, mid, timeout_s=None):
        self.call(CLUSTER + "MemberRemove", pb.member_id_req(mid), timeout_s)

    def member_promote(self, mid, timeout_s=None):
        self.call(CLUSTER + "MemberPromote", pb.member_id_req(mid),
                  timeout_s)

    def alarms(self, timeout_s=None):
        """[(member_id, alarm)] of the cluster's raised alarms."""
        d = pb.decode(self.call(MAINT + "Alarm", b"", timeout_s))
        out = []
        for b in d.get(2, []):
            m = pb.decode(b)
            out.append((pb.one(m, 1), pb.one(m, 2)))
        return out

    def disarm(self, member_id, alarm, timeout_s=None):
        """AlarmRequest DEACTIVATE (action 2) of one alarm."""
        self.call(MAINT + "Alarm", pb.f_varint(1, 2) +
                  pb.f_varint(2, member_id) + pb.f_varint(3, alarm),
                  timeout_s)

    def hashkv(self, revision, timeout_s=None):
        """(header revision, hash, compact_revision) at revision."""
        return pb.hashkv_resp(self.call(MAINT + "HashKV",
                                        pb.hashkv_req(revision), timeout_s))


def _execute(conn, rec):
    f = rec["op"]
    if f == "get":
        b = conn.call(KV + "Range", pb.range_req(
            rec["key"], rec.get("range_end"), rec.get("serializable", False)))
        rec["revision"], rec["kvs"] = pb.range_resp(b)
    elif f == "put":
        b = conn.call(KV + "Put", pb.put_req(rec["key"], rec["value"]))
        rec["revision"] = pb.header(pb.decode(b))[0]
    elif f == "delete":
        b = conn.call(KV + "DeleteRange", pb.delete_req(rec["key"]))
        rec["revision"], rec["deleted"] = pb.delete_resp(b)
    elif f == "cas":
        cmp = [{"key": rec["key"], "target": "mod", "result": "=",
                "value": rec["expect_mod_revision"]}]
        success = [{"op": "put", "key": rec["key"], "value": rec["value"]}]
        failure = [{"op": "get", "key": rec["key"]}]
        b = conn.call(KV + "Txn", pb.txn_req(cmp, success, failure))
        ok = bool(pb.one(pb.decode(b), 2))
        rev, ok, res = pb.txn_resp(b, success if ok else failure)
        rec["revision"], rec["succeeded"] = rev, ok
        if not ok:
            rec["kvs"] = res[0]["kvs"] if res else []
    elif f == "txn":
        b = conn.call(KV + "Txn", pb.txn_req(rec.get("compare", []),
                                             rec.get("success", []),
                                             rec.get("failure", [])))
        ok = bool(pb.one(pb.decode(b), 2))
        branch = rec.get("success" if ok else "failure", [])
        rec["revision"], rec["succeeded"], rec["responses"] = pb.txn_resp(
            b, branch)
    else:
        raise ValueError("unknown op %r" % f)


def execute(conn, rec, clock):
    """Send rec (a history op without outcome); set invoke_ns before the
    request leaves and complete_ns after the answer, from clock()."""
    rec["invoke_ns"] = clock()
    try:
        _execute(conn, rec)
        rec["outcome"] = "ok"
    except Definite as e:
        rec["outcome"], rec["error"] = "fail", str(e)[:200]
    except Indefinite as e:
        rec["outcome"], rec["error"] = "info", str(e)[:200]
    rec["complete_ns"] = clock()
    return rec
