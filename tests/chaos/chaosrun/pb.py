"""The few etcd v3 protobuf messages the harness speaks, by hand.

Debian's python3-grpcio carries bytes; this module turns them into the
messages of proto/etcdserverpb/rpc.proto and proto/mvccpb/kv.proto (field
numbers cited there) and back, and reads the handshake frame of moord's
peer stream (proto/moor/peer.proto) for the fault proxy.  Only what the
harness needs: no unknown-field preservation, no packed repeated fields
(none of the messages read here has one).

Encoding: proto3 wire format.  A varint field is omitted when 0, a bytes
field when empty, as protobuf does.  int64 values go out as their 64-bit
two's complement.  decode() returns {field number: [values]}: an int for
varint / fixed fields, bytes for length-delimited ones.
"""

MASK64 = (1 << 64) - 1


class DecodeError(Exception):
    pass


def varint(n):
    n &= MASK64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num, v):
    """Field num as a varint (int, enum, bool); nothing when 0."""
    v = int(v)
    if v == 0:
        return b""
    return varint(num << 3) + varint(v)


def f_bytes(num, b):
    """Field num length-delimited (bytes, string, message); nothing when
    empty."""
    if isinstance(b, str):
        b = b.encode()
    if not b:
        return b""
    return varint((num << 3) | 2) + varint(len(b)) + b


def f_msg(num, b):
    """An embedded message, present even when empty (a oneof member)."""
    return varint((num << 3) | 2) + varint(len(b)) + b


def _read_varint(buf, i):
    n, shift = 0, 0
    while True:
        if i >= len(buf) or shift > 63:
            raise DecodeError("truncated varint")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode(buf):
    """{field number: [values]} of one message; raises DecodeError."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            if i + n > len(buf):
                raise DecodeError("truncated field %d" % num)
            v = bytes(buf[i:i + n])
            i += n
        elif wt == 1:
            if i + 8 > len(buf):
                raise DecodeError("truncated fixed64")
            v = int.from_bytes(buf[i:i + 8], "little")
            i += 8
        elif wt == 5:
            if i + 4 > len(buf):
                raise DecodeError("truncated fixed32")
            v = int.from_bytes(buf[i:i + 4], "little")
            i += 4
        else:
            raise DecodeError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def one(d, num, default=0):
    v = d.get(num)
    return v[-1] if v else default


def i64(v):
    """A decoded varint as a signed int64."""
    return v - (1 << 64) if v >= 1 << 63 else v


def text(b):
    return b.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- etcd KV

def kv(b):
    """mvccpb.KeyValue -> the history's kv dict."""
    d = decode(b)
    return {"key": text(one(d, 1, b"")), "value": text(one(d, 5, b"")),
            "create_revision": i64(one(d, 2)),
            "mod_revision": i64(one(d, 3)), "version": i64(one(d, 4))}


def header(d):
    """(revision, member_id) of a response's ResponseHeader (field 1)."""
    h = decode(one(d, 1, b""))
    return i64(one(h, 3)), one(h, 2)


def range_req(key, range_end=None, serializable=False):
    return (f_bytes(1, key) + f_bytes(2, range_end or b"") +
            f_varint(7, serializable))


def range_resp(b):
    """RangeResponse -> (revision, [kv])."""
    d = decode(b)
    return header(d)[0], [kv(x) for x in d.get(2, [])]


def put_req(key, value):
    return f_bytes(1, key) + f_bytes(2, value)


def delete_req(key):
    return f_bytes(1, key)


# Compare.CompareResult and CompareTarget
CMP_RESULT = {"=": 0, ">": 1, "<": 2, "!=": 3}
CMP_TARGET = {"version": 0, "create": 1, "mod": 2, "value": 3}
_CMP_FIELD = {"version": 4, "create": 5, "mod": 6}


def compare(c):
    """One history compare {"key","target","result","value"}."""
    t = c["target"]
    body = (f_varint(1, CMP_RESULT[c["result"]]) +
            f_varint(2, CMP_TARGET[t]) + f_bytes(3, c["key"]))
    if t == "value":
        v = c["value"].encode()
        body += varint((7 << 3) | 2) + varint(len(v)) + v
    else:
        # A oneof member is sent even when 0 (MOD = 0: "does not exist").
        body += varint(_CMP_FIELD[t] << 3) + varint(int(c["value"]))
    return body


def request_op(o):
    """One history txn request {"op","key",["range_end"],["value"]}."""
    if o["op"] == "get":
        return f_msg(1, range_req(o["key"], o.get("range_end")))
    if o["op"] == "put":
        return f_msg(2, put_req(o["key"], o["value"]))
    return f_msg(3, delete_req(o["key"]))


def txn_req(compares, success, failure):
    return (b"".join(f_msg(1, compare(c)) for c in compares) +
            b"".join(f_msg(2, request_op(o)) for o in success) +
            b"".join(f_msg(3, request_op(o)) for o in failure))


def txn_resp(b, branch):
    """TxnResponse -> (revision, succeeded, responses) where responses
    follow the history format, one per request of `branch` (the list of
    requests of the branch that ran)."""
    d = decode(b)
    out = []
    for o, r in zip(branch, d.get(3, [])):
        rd = decode(r)
        if o["op"] == "get":
            inner = decode(one(rd, 1, b""))
            out.append({"kvs": [kv(x) for x in inner.get(2, [])]})
        elif o["op"] == "delete":
            inner = decode(one(rd, 3, b""))
            out.append({"deleted": i64(one(inner, 2))})
        else:
            out.append({})
    return header(d)[0], bool(one(d, 2)), out


def delete_resp(b):
    d = decode(b)
    return header(d)[0], i64(one(d, 2))


def status_resp(b):
    """StatusResponse -> (member_id, leader, raft_term, applied_index)."""
    d = decode(b)
    return header(d)[1], one(d, 4), one(d, 6), one(d, 7)


def hashkv_req(revision):
    return f_varint(1, revision)


def hashkv_resp(b):
    """HashKVResponse -> (revision, hash, compact_revision)."""
    d = decode(b)
    return header(d)[0], one(d, 2), i64(one(d, 3))


# ------------------------------------------------------ moord peer frames

def handshake_name(frame_body):
    """The sender's --name from a moorpb.Frame holding a Handshake (Frame
    field 1; Handshake.name is field 6), or None when the frame is not a
    handshake."""
    d = decode(frame_body)
    hs = d.get(1)
    if not hs:
        return None
    return text(one(decode(hs[-1]), 6, b""))


MSG_PROP = 11  # moorpb.MessageType (proto/moor/raft.proto)


def frame_message_type(frame_body):
    """The raft MessageType of a moorpb.Frame holding a Message (Frame
    field 2; Message.type is field 1), or None for any other frame."""
    try:
        d = decode(frame_body)
        m = d.get(2)
        if not m:
            return None
        return one(decode(m[-1]), 1)
    except DecodeError:
        return None


# ------------------------------------------------------- etcd Cluster API

def member(b):
    """etcdserverpb.Member -> {"id","name","peer_urls","client_urls",
    "learner"}."""
    d = decode(b)
    return {"id": one(d, 1), "name": text(one(d, 2, b"")),
            "peer_urls": [text(x) for x in d.get(3, [])],
            "client_urls": [text(x) for x in d.get(4, [])],
            "learner": bool(one(d, 5))}


def member_add_req(peer_urls, learner=False):
    return b"".join(f_bytes(1, u) for u in peer_urls) + f_varint(2, learner)


def member_add_resp(b):
    """MemberAddResponse -> (the new member, [every member])."""
    d = decode(b)
    return member(one(d, 2, b"")), [member(x) for x in d.get(3, [])]


def member_id_req(mid):
    """MemberRemoveRequest and MemberPromoteRequest: ID is field 1."""
    return f_varint(1, mid)


def member_list_resp(b):
    return [member(x) for x in decode(b).get(2, [])]
