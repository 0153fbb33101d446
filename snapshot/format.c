/*
 * format.c: the snapshot file's bytes, and the verifier. All integers are
 * little-endian.
 *
 * File <snap-dir>/<term>-<index>.snap (16 lower-case hex digits each):
 *
 * Header, 88 + M bytes:
 *   OFFSET SIZE MEANING
 *   0      8    magic "moorsnap"
 *   8      4    format version, 1
 *   12     4    header bytes H = 88 + M (where the body starts)
 *   16     8    term of the last entry covered
 *   24     8    index of the last entry covered
 *   32     8    kv applied index
 *   40     8    kv revision
 *   48     8    kv compact revision
 *   56     8    key count
 *   64     8    lease count
 *   72     8    created, unix nanoseconds (informational)
 *   80     4    membership bytes M (<= 1 MiB)
 *   84     4    zero
 *   88     M    membership (server/'s encoding, opaque here)
 *
 * Body, at H: the kv state stream as one lz4 frame (LZ4F, 256 KiB blocks,
 * no lz4 content checksum: the SHA-256 covers it). B bytes.
 *
 * Padding, at H + B: P < 512 zero bytes, so that the file size is 32 more
 * than a multiple of 512 — the shape etcdctl's `snapshot save` and
 * `snapshot restore` look for before they check a trailing SHA-256
 * (size % 512 == 32). Files written before padding existed have P = 0.
 *
 * Trailer, 56 bytes, at H + B + P (the file is H + B + P + 56 bytes):
 *   OFFSET SIZE MEANING
 *   0      8    magic "moorsend"
 *   8      8    body bytes B
 *   16     8    raw bytes: the kv stream's length before compression
 *   24     32   SHA-256 of every byte of the file before these 32
 *
 * A file verifies when: it is at least 144 bytes; magic, version and the
 * zero field are right; H = 88 + M and M <= 1 MiB; H + B + P + 56 equals
 * the file size with P < 512 and the padding all zeros; the SHA-256
 * matches; and the body is exactly one lz4 frame that decodes to the raw
 * byte count.
 */
#include <errno.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "snapshot_int.h"

void snap__hdr_encode(uint8_t *out, const struct snap_meta *m,
                      uint32_t membership_len)
{
    memset(out, 0, SNAP__HDR_FIXED);
    memcpy(out, SNAP__MAGIC, 8);
    moor_put_le32(out + 8, SNAP__VERSION);
    moor_put_le32(out + 12, SNAP__HDR_FIXED + membership_len);
    moor_put_le64(out + 16, m->term);
    moor_put_le64(out + 24, m->index);
    moor_put_le64(out + 32, m->applied_index);
    moor_put_le64(out + 40, m->revision);
    moor_put_le64(out + 48, m->compact_revision);
    moor_put_le64(out + 56, m->key_count);
    moor_put_le64(out + 64, m->lease_count);
    moor_put_le64(out + 72, m->created_unix_ns);
    moor_put_le32(out + 80, membership_len);
}

void snap__trailer_encode(uint8_t *out, uint64_t body_bytes, uint64_t raw_bytes)
{
    memcpy(out, SNAP__TRAILER_MAGIC, 8);
    moor_put_le64(out + 8, body_bytes);
    moor_put_le64(out + 16, raw_bytes);
}

void snap_meta_close(struct snap_meta *m)
{
    moor_bytes_unref(m->membership);
    m->membership = NULL;
}

static int src_read(const struct snap__src *s, uint64_t off, void *buf,
                    size_t len)
{
    if (off > s->size || len > s->size - off) {
        return MOOR_ECORRUPT;
    }
    if (s->mem != NULL) {
        memcpy(buf, s->mem + off, len);
        return MOOR_OK;
    }
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n;
        if (s->fs != NULL) {
            n = s->fs->pread(s->fs->arg, s->fd, p, len, (off_t)off);
        } else {
            n = pread(s->fd, p, len, (off_t)off);
            n = n < 0 ? -errno : n;
        }
        if (n == -EINTR) {
            continue;
        }
        if (n <= 0) {
            return n == 0 ? MOOR_ECORRUPT : MOOR_EIO;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return MOOR_OK;
}

/* Formats a corruption message naming the file, offset and source line. */
#define CORRUPT(off, ...)                                                   \
    do {                                                                    \
        char what_[160];                                                    \
        snprintf(what_, sizeof(what_), __VA_ARGS__);                        \
        moor_errmsg_set(errmsg, "%s: offset %" PRIu64 ": %s (format.c:%d)", \
                        src->name, (uint64_t)(off), what_, __LINE__);       \
        rv = MOOR_ECORRUPT;                                                 \
        goto out;                                                           \
    } while (0)

/* SHA-256 of src[0..len). */
static int sha_range(const struct snap__src *src, uint64_t len, uint8_t *sha,
                     uint8_t *buf)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return MOOR_ENOMEM;
    }
    int rv = MOOR_OK;
    for (uint64_t off = 0; off < len && rv == MOOR_OK;) {
        size_t n = (size_t)MOOR_MIN((uint64_t)SNAP__CHUNK, len - off);
        rv = src_read(src, off, buf, n);
        if (rv == MOOR_OK && EVP_DigestUpdate(ctx, buf, n) != 1) {
            rv = MOOR_EIO;
        }
        off += n;
    }
    unsigned int out_len = 0;
    if (rv == MOOR_OK && EVP_DigestFinal_ex(ctx, sha, &out_len) != 1) {
        rv = MOOR_EIO;
    }
    EVP_MD_CTX_free(ctx);
    return rv;
}

/* The SHA-256 of src[0..len) computed on a thread of its own, while the
 * caller decodes the body (snap_load_once). */
struct sha_job
{
    const struct snap__src *src;
    uint64_t len;
    uint8_t *buf; /* SNAP__CHUNK bytes, the thread's own */
    uint8_t sha[32];
    int rv;
};

static void *sha_thread(void *arg)
{
    struct sha_job *j = arg;
    j->rv = sha_range(j->src, j->len, j->sha, j->buf);
    return NULL;
}

/* Decodes the body [h, h + b): exactly one frame, raw bytes counted and fed
 * to consume_cb when set. */
static int decode_body(const struct snap__src *src, uint64_t h, uint64_t b,
                       uint64_t raw_want, snap_consume_cb consume_cb, void *arg,
                       uint8_t *in, uint8_t *out, char *errmsg)
{
    LZ4F_dctx *dctx = NULL;
    int rv = MOOR_OK;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
        return MOOR_ENOMEM;
    }
    uint64_t raw = 0;
    uint64_t off = 0;
    size_t hint = 1; /* 0 once the frame has ended */
    while (off < b) {
        size_t n = (size_t)MOOR_MIN((uint64_t)SNAP__CHUNK, b - off);
        rv = src_read(src, h + off, in, n);
        if (rv != MOOR_OK) {
            goto out;
        }
        size_t used_total = 0;
        while (used_total < n) {
            if (hint == 0) {
                CORRUPT(h + off + used_total, "bytes after the lz4 frame");
            }
            size_t out_len = SNAP__CHUNK;
            size_t in_len = n - used_total;
            hint = LZ4F_decompress(dctx, out, &out_len, in + used_total,
                                   &in_len, NULL);
            if (LZ4F_isError(hint)) {
                CORRUPT(h + off + used_total, "lz4: %s",
                        LZ4F_getErrorName(hint));
            }
            used_total += in_len;
            raw += out_len;
            if (raw > raw_want) {
                CORRUPT(h + off + used_total,
                        "body decodes to more than %" PRIu64 " bytes",
                        raw_want);
            }
            if (out_len > 0 && consume_cb != NULL) {
                rv = consume_cb(arg, out, out_len);
                if (rv != 0) {
                    goto out;
                }
            }
            if (in_len == 0 && out_len == 0 && hint != 0) {
                CORRUPT(h + off + used_total, "lz4 decoder stalled");
            }
        }
        off += n;
    }
    /* Drain output the decoder still holds. */
    while (hint != 0) {
        size_t out_len = SNAP__CHUNK;
        size_t in_len = 0;
        hint = LZ4F_decompress(dctx, out, &out_len, NULL, &in_len, NULL);
        if (LZ4F_isError(hint) || out_len == 0) {
            CORRUPT(h + b, "lz4 frame is incomplete");
        }
        raw += out_len;
        if (raw > raw_want) {
            CORRUPT(h + b, "body decodes to more than %" PRIu64 " bytes",
                    raw_want);
        }
        if (consume_cb != NULL) {
            rv = consume_cb(arg, out, out_len);
            if (rv != 0) {
                goto out;
            }
        }
    }
    if (raw != raw_want) {
        CORRUPT(h + b,
                "body decodes to %" PRIu64 " bytes, trailer says %" PRIu64, raw,
                raw_want);
    }
out:
    LZ4F_freeDecompressionContext(dctx);
    return rv;
}

/* The frame of a snapshot: where the body is and what the trailer says. */
struct frame
{
    uint8_t hdr[SNAP__HDR_FIXED];
    uint8_t tr[SNAP__TRAILER_BYTES];
    uint32_t hlen; /* body offset */
    uint32_t mlen; /* membership bytes */
    uint64_t body; /* body bytes */
    uint64_t raw;  /* raw stream bytes */
};

/* Reads and checks the header and trailer and that they fit the size. */
static int check_frame(const struct snap__src *src, struct frame *f,
                       char *errmsg)
{
    int rv = MOOR_OK;
    if (src->size < SNAP__HDR_FIXED + SNAP__TRAILER_BYTES) {
        CORRUPT(src->size, "file of %" PRIu64 " bytes is too short", src->size);
    }
    uint64_t tail = src->size - SNAP__TRAILER_BYTES;
    if ((rv = src_read(src, 0, f->hdr, sizeof(f->hdr))) != MOOR_OK ||
        (rv = src_read(src, tail, f->tr, sizeof(f->tr))) != MOOR_OK) {
        goto out;
    }
    if (memcmp(f->hdr, SNAP__MAGIC, 8) != 0) {
        CORRUPT(0, "bad magic");
    }
    if (moor_get_le32(f->hdr + 8) != SNAP__VERSION) {
        CORRUPT(8, "unknown format version %u", moor_get_le32(f->hdr + 8));
    }
    f->mlen = moor_get_le32(f->hdr + 80);
    f->hlen = moor_get_le32(f->hdr + 12);
    if (f->mlen > SNAP_MEMBERSHIP_MAX || f->hlen != SNAP__HDR_FIXED + f->mlen ||
        moor_get_le32(f->hdr + 84) != 0) {
        CORRUPT(12, "bad header length %u (membership %u)", f->hlen, f->mlen);
    }
    if (memcmp(f->tr, SNAP__TRAILER_MAGIC, 8) != 0) {
        CORRUPT(tail, "bad trailer magic");
    }
    f->body = moor_get_le64(f->tr + 8);
    f->raw = moor_get_le64(f->tr + 16);
    if (tail < f->hlen || f->body > tail - f->hlen ||
        tail - f->hlen - f->body >= SNAP__PAD_ALIGN) {
        CORRUPT(tail + 8, "body of %" PRIu64 " bytes does not fit the file",
                f->body);
    }
    uint64_t pad_at = f->hlen + f->body;
    uint8_t pad[SNAP__PAD_ALIGN];
    if ((rv = src_read(src, pad_at, pad, tail - pad_at)) != MOOR_OK) {
        goto out;
    }
    for (uint64_t i = 0; i < tail - pad_at; i++) {
        if (pad[i] != 0) {
            CORRUPT(pad_at + i, "padding byte is not zero");
        }
    }
out:
    return rv;
}

/* Fills *m from a checked frame; the membership is read when want_members
 * (returns owned in m->membership). */
static int fill_meta(const struct snap__src *src, const struct frame *f,
                     bool want_members, struct snap_meta *m)
{
    memset(m, 0, sizeof(*m));
    m->term = moor_get_le64(f->hdr + 16);
    m->index = moor_get_le64(f->hdr + 24);
    m->applied_index = moor_get_le64(f->hdr + 32);
    m->revision = moor_get_le64(f->hdr + 40);
    m->compact_revision = moor_get_le64(f->hdr + 48);
    m->key_count = moor_get_le64(f->hdr + 56);
    m->lease_count = moor_get_le64(f->hdr + 64);
    m->created_unix_ns = moor_get_le64(f->hdr + 72);
    m->body_bytes = f->body;
    m->raw_bytes = f->raw;
    memcpy(m->sha256, f->tr + 24, 32);
    if (!want_members || f->mlen == 0) {
        return MOOR_OK;
    }
    m->membership = moor_bytes_new(f->mlen);
    if (m->membership == NULL) {
        return MOOR_ENOMEM;
    }
    int rv = src_read(src, SNAP__HDR_FIXED, m->membership->data, f->mlen);
    if (rv != MOOR_OK) {
        snap_meta_close(m);
    }
    return rv;
}

/* snap_load's checks: the SHA-256 first (nothing below trusts an
 * unverified byte), then the whole frame decodes, before a byte reaches
 * consume_cb (when set), which the frame is then decoded again into. */
static int verify_first(const struct snap__src *src, const struct frame *f,
                        snap_consume_cb consume_cb, void *arg, uint8_t *in,
                        uint8_t *out, char *errmsg)
{
    uint8_t sha[32];
    int rv = sha_range(src, src->size - 32, sha, in);
    if (rv != MOOR_OK) {
        goto out;
    }
    if (memcmp(sha, f->tr + 24, 32) != 0) {
        CORRUPT(src->size - 32, "SHA-256 mismatch");
    }
    rv =
        decode_body(src, f->hlen, f->body, f->raw, NULL, NULL, in, out, errmsg);
    if (rv == MOOR_OK && consume_cb != NULL) {
        rv = decode_body(src, f->hlen, f->body, f->raw, consume_cb, arg, in,
                         out, errmsg);
    }
out:
    return rv;
}

/* snap_load_once's checks: the body decodes into consume_cb while a
 * second thread hashes the file (one core hashing, one decoding and
 * loading: the restart of a large keyspace waits for the slower of the two
 * instead of their sum). The result stands only if both agree; a file
 * whose SHA-256 does not match fails with MOOR_ECORRUPT after consume_cb
 * got some of it. Without a thread, the two run one after the other. */
static int verify_once(const struct snap__src *src, const struct frame *f,
                       snap_consume_cb consume_cb, void *arg, uint8_t *in,
                       uint8_t *out, char *errmsg)
{
    struct sha_job j = {.src = src, .len = src->size - 32};
    j.buf = moor_malloc(SNAP__CHUNK);
    if (j.buf == NULL) {
        return MOOR_ENOMEM;
    }
    pthread_t th;
    bool threaded = pthread_create(&th, NULL, sha_thread, &j) == 0;
    if (!threaded) {
        sha_thread(&j);
    }
    int rv = decode_body(src, f->hlen, f->body, f->raw, consume_cb, arg, in,
                         out, errmsg);
    if (threaded) {
        pthread_join(th, NULL);
    }
    moor_free(j.buf);
    if (j.rv != MOOR_OK) {
        return j.rv;
    }
    /* A checksum mismatch names the damage first, whatever the decoder
     * made of the damaged bytes. */
    if (memcmp(j.sha, f->tr + 24, 32) != 0) {
        CORRUPT(src->size - 32, "SHA-256 mismatch");
    }
out:
    return rv;
}

int snap__verify(const struct snap__src *src, struct snap_meta *meta,
                 snap_consume_cb consume_cb, void *arg, bool once, char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    errmsg[0] = '\0';
    struct frame f;
    uint8_t *in = moor_malloc(SNAP__CHUNK);
    uint8_t *out = moor_malloc(SNAP__CHUNK);
    int rv = in == NULL || out == NULL ? MOOR_ENOMEM : MOOR_OK;
    if (rv == MOOR_OK) {
        rv = check_frame(src, &f, errmsg);
    }
    if (rv != MOOR_OK) {
        goto out;
    }
    if (once && consume_cb != NULL) {
        rv = verify_once(src, &f, consume_cb, arg, in, out, errmsg);
    } else {
        rv = verify_first(src, &f, consume_cb, arg, in, out, errmsg);
    }
    if (rv == MOOR_OK && meta != NULL) {
        rv = fill_meta(src, &f, true, meta);
    }
out:
    if (rv == MOOR_EIO || (rv == MOOR_ECORRUPT && errmsg[0] == '\0')) {
        moor_errmsg_set(errmsg, "%s: %s", src->name,
                        rv == MOOR_EIO ? "read error" : "file changed size");
    }
    moor_free(in);
    moor_free(out);
    return rv;
}

int snap_verify_mem(const uint8_t *data, size_t len, struct snap_meta *meta,
                    snap_consume_cb consume_cb, void *arg, char *errmsg)
{
    struct snap__src src = {
        .mem = data, .fd = -1, .size = len, .name = "(memory)"};
    return snap__verify(&src, meta, consume_cb, arg, false, errmsg);
}
