/*
 * common/common.h: the small pieces every moor module shares.
 *
 * What is here: the one error enum (MOOR_OK = 0, failures negative) with
 * names and messages; the one replaceable allocator (byte accounting for
 * metrics and quotas, "fail the Nth allocation" for tests); byte slices,
 * growable buffers and refcounted byte blocks; crc32c; little/big-endian
 * and varint helpers; logging; a monotonic clock; a seeded PRNG.
 *
 * What is not: anything that does I/O beyond logging to stderr and reading
 * the clock. raft/ and kv/ may include this header; they must not call
 * moor_clock_*() (time enters them as ticks or as arguments).
 *
 * Threads: everything here is safe to call from any thread, except that a
 * struct moor_buf, moor_bytes or moor_prng belongs to one thread at a time
 * (refcounts are not atomic: hand a block to another thread by giving up
 * your reference, never by sharing it). The allocator's counters and the
 * log sink are the only globals; the counters are atomic.
 *
 * Ownership words used in every moor header: "borrows" (no pointer kept
 * after return), "consumes" (ownership passes on MOOR_OK only), "returns
 * owned" (free with the named function), "returns borrowed, valid until X".
 */
#ifndef MOOR_COMMON_H
#define MOOR_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Errors
 *
 * One table, X(NAME, "message"). Module APIs return these, never raw errno;
 * objects that fail keep a longer errmsg with the context (file, offset,
 * peer). The server maps them to etcd's gRPC statuses in one table.
 * ---------------------------------------------------------------------- */
#define MOOR_ERRORS(X)                                                     \
    X(MOOR_ENOMEM, "out of memory")                                        \
    X(MOOR_EINVAL, "invalid argument")                                     \
    X(MOOR_EIO, "input/output error")                                      \
    X(MOOR_ENOSPC, "no space left on device")                              \
    X(MOOR_ECORRUPT, "data corruption detected")                           \
    X(MOOR_ENOENT, "not found")                                            \
    X(MOOR_EEXIST, "already exists")                                       \
    X(MOOR_EBUSY, "resource busy")                                         \
    X(MOOR_ELOCKED, "data directory is locked by another process")         \
    X(MOOR_ETOOBIG, "size limit exceeded")                                 \
    X(MOOR_ESHUTDOWN, "shutting down")                                     \
    X(MOOR_EPOISONED, "storage failed earlier and refuses further writes") \
    X(MOOR_ETIMEDOUT, "timed out")                                         \
    X(MOOR_ECANCELED, "canceled")                                          \
    X(MOOR_EPROTO, "protocol error")                                       \
    X(MOOR_ECONN, "connection failed")                                     \
    X(MOOR_ETLS, "TLS error")                                              \
    X(MOOR_ENOLEADER, "no leader")                                         \
    X(MOOR_ENOTLEADER, "not leader")                                       \
    X(MOOR_EDROPPED, "proposal dropped")                                   \
    X(MOOR_ECOMPACTED, "required revision has been compacted")             \
    X(MOOR_EFUTUREREV, "required revision is a future revision")           \
    X(MOOR_EUNAVAILABLE, "temporarily unavailable")                        \
    X(MOOR_EAGAIN, "try again")                                            \
    X(MOOR_EEMPTYKEY, "key is not provided")                               \
    X(MOOR_EKEYNOTFOUND, "key not found")                                  \
    X(MOOR_EVALUEPROVIDED, "value is provided")                            \
    X(MOOR_ELEASEPROVIDED, "lease is provided")                            \
    X(MOOR_ETOOMANYOPS, "too many operations in txn request")              \
    X(MOOR_EDUPKEY, "duplicate key given in txn request")                  \
    X(MOOR_ELEASENOTFOUND, "requested lease not found")                    \
    X(MOOR_ELEASEEXISTS, "lease already exists")                           \
    X(MOOR_ELEASETTLTOOLARGE, "too large lease TTL")                       \
    X(MOOR_ENOSPACE, "database space exceeded")                            \
    X(MOOR_EMEMBEREXISTS, "member ID already exist")                       \
    X(MOOR_EPEERURLEXISTS, "peer URLs already exists")                     \
    X(MOOR_EMEMBERBADURLS, "given member URLs are invalid")                \
    X(MOOR_EMEMBERNOTFOUND, "member not found")                            \
    X(MOOR_EMEMBERNOTLEARNER, "can only promote a learner member")         \
    X(MOOR_ELEARNERNOTREADY,                                               \
      "can only promote a learner member which is in sync with leader")    \
    X(MOOR_ETOOMANYLEARNERS, "too many learner members in cluster")        \
    X(MOOR_EUNHEALTHY, "unhealthy cluster")                                \
    X(MOOR_ENOTENOUGHSTARTED,                                              \
      "re-configuration failed due to not enough started members")

enum moor_err {
    MOOR_OK = 0,
    MOOR__ERR_FIRST = -1000,
#define MOOR__ERR_ENUM(name, msg) name,
    MOOR_ERRORS(MOOR__ERR_ENUM)
#undef MOOR__ERR_ENUM
        MOOR__ERR_LAST
};

/* The message of a moor error code ("ok" for MOOR_OK, "unknown error" for a
 * value outside the table). Returns borrowed, valid forever. */
const char *moor_strerror(int err);

/* The symbolic name of a moor error code ("MOOR_EIO"). Returns borrowed,
 * valid forever. */
const char *moor_errname(int err);

/* Translates an errno value at a syscall edge: ENOSPC/EDQUOT -> MOOR_ENOSPC,
 * ENOMEM -> MOOR_ENOMEM, ENOENT -> MOOR_ENOENT, EEXIST -> MOOR_EEXIST,
 * EINVAL -> MOOR_EINVAL, EWOULDBLOCK/EAGAIN -> MOOR_EAGAIN, anything else ->
 * MOOR_EIO. Keep the errno itself in your errmsg. */
int moor_err_from_errno(int errnum);

/* Bytes for an object's error message with context. */
#define MOOR_ERRMSG_SIZE 256

/* Formats into errmsg (MOOR_ERRMSG_SIZE bytes), truncating safely. */
void moor_errmsg_set(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------
 * Allocator
 *
 * All heap use goes through these, so tests can fail the Nth allocation and
 * /metrics can report live bytes. moor_malloc(0) returns a valid unique
 * pointer. Failure returns NULL; callers return MOOR_ENOMEM.
 * ---------------------------------------------------------------------- */
void *moor_malloc(size_t size);
void *moor_calloc(size_t count, size_t size);
void *moor_realloc(void *ptr, size_t size);
void moor_free(void *ptr);
/* Returns owned (moor_free): a copy of the NUL-terminated string s. */
char *moor_strdup(const char *s);

/* Bytes currently allocated through moor_* (each block as malloc's usable
 * size: the request rounded up to malloc's chunk, without malloc's own
 * bookkeeping), and the number of live allocations. */
size_t moor_alloc_bytes(void);
size_t moor_alloc_count(void);

/* Hands free memory the C library keeps back to the system (glibc's
 * malloc_trim: whole free pages, also inside the heap), after a large
 * release such as a Raft log compaction. Costs a walk of malloc's free
 * lists. (moor builds on glibc: the accounting uses malloc_usable_size.) */
void moor_alloc_trim(void);

/* Tests: make the allocation after the next n succeed-or-fail decisions
 * fail (n = 0: the very next one fails), once. n < 0 disables. */
void moor_alloc_fail_after(long n);

/* ------------------------------------------------------------------------
 * Slices, buffers and refcounted bytes
 * ---------------------------------------------------------------------- */

/* A borrowed view of bytes. */
struct moor_slice
{
    const uint8_t *ptr;
    size_t len;
};

static inline struct moor_slice moor_slice_make(const void *ptr, size_t len)
{
    struct moor_slice s = {(const uint8_t *)ptr, len};
    return s;
}

static inline struct moor_slice moor_slice_str(const char *s)
{
    return moor_slice_make(s, strlen(s));
}

/* Byte-wise comparison, shorter-is-smaller: <0, 0, >0 as memcmp. */
int moor_slice_cmp(struct moor_slice a, struct moor_slice b);

static inline bool moor_slice_eq(struct moor_slice a, struct moor_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* A growable byte buffer the caller owns (init/close on caller memory).
 * Invariant: len <= cap; ptr is NULL only when cap == 0. */
struct moor_buf
{
    uint8_t *ptr;
    size_t len;
    size_t cap;
};

void moor_buf_init(struct moor_buf *b);
void moor_buf_close(struct moor_buf *b);
/* Makes room for at least extra more bytes. MOOR_ENOMEM on failure (the
 * buffer is unchanged). */
int moor_buf_reserve(struct moor_buf *b, size_t extra);
/* Appends len bytes (borrows data). MOOR_ENOMEM on failure. */
int moor_buf_append(struct moor_buf *b, const void *data, size_t len);
/* Appends one byte. */
int moor_buf_putc(struct moor_buf *b, uint8_t c);
/* Appends printf output (without the NUL; ptr[len] is NUL afterwards). */
int moor_buf_printf(struct moor_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drops the contents, keeps the memory. */
static inline void moor_buf_reset(struct moor_buf *b)
{
    b->len = 0;
}
/* Removes the first n bytes (n <= len), moving the rest to the front. */
void moor_buf_consume(struct moor_buf *b, size_t n);

/* A refcounted, immutable block of bytes: one payload can sit in the raft
 * log, a peer's outbox and the apply queue without copies. The refcount is
 * not atomic: one thread at a time. */
struct moor_bytes
{
    uint32_t refs;
    uint32_t reserved;
    size_t len;
    uint8_t data[]; /* len bytes */
};

/* Returns owned (moor_bytes_unref): a block of len bytes, uninitialised,
 * refs = 1. NULL on allocation failure. */
struct moor_bytes *moor_bytes_new(size_t len);
/* Returns owned: a block holding a copy of len bytes at data. */
struct moor_bytes *moor_bytes_copy(const void *data, size_t len);
/* Takes another reference; returns b. b may be NULL. */
struct moor_bytes *moor_bytes_ref(struct moor_bytes *b);
/* Drops a reference, freeing the block at zero. b may be NULL. */
void moor_bytes_unref(struct moor_bytes *b);

static inline struct moor_slice moor_bytes_slice(const struct moor_bytes *b)
{
    if (b == NULL) {
        return moor_slice_make(NULL, 0);
    }
    return moor_slice_make(b->data, b->len);
}

/* ------------------------------------------------------------------------
 * crc32c (Castagnoli, reflected, as iSCSI, ext4 and etcd's WAL use it)
 *
 * moor_crc32c(0, "123456789", 9) == 0xE3069283. Chaining: the crc of a||b is
 * moor_crc32c(moor_crc32c(0, a), b). Uses the SSE4.2 instruction when the
 * CPU has it (three interleaved lanes from 192 bytes on: about 3x the
 * speed of one chain on big buffers, 1.5x on 288-byte WAL records), a
 * slicing-by-8 table otherwise; both give the same values.
 * ---------------------------------------------------------------------- */
uint32_t moor_crc32c(uint32_t crc, const void *data, size_t len);
/* The table version alone (tests check both against the vectors). */
uint32_t moor_crc32c_sw(uint32_t crc, const void *data, size_t len);
/* True when the hardware instruction is used. */
bool moor_crc32c_hw_available(void);

/* ------------------------------------------------------------------------
 * Endian and varint helpers. Unaligned access is fine.
 * ---------------------------------------------------------------------- */
static inline void moor_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t moor_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline void moor_put_le64(uint8_t *p, uint64_t v)
{
    moor_put_le32(p, (uint32_t)v);
    moor_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t moor_get_le64(const uint8_t *p)
{
    return (uint64_t)moor_get_le32(p) | (uint64_t)moor_get_le32(p + 4) << 32;
}
static inline void moor_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t moor_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}
static inline void moor_put_be64(uint8_t *p, uint64_t v)
{
    moor_put_be32(p, (uint32_t)(v >> 32));
    moor_put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t moor_get_be64(const uint8_t *p)
{
    return (uint64_t)moor_get_be32(p) << 32 | (uint64_t)moor_get_be32(p + 4);
}

/* Longest encoding of a uint64 varint (LEB128, as protobuf). */
#define MOOR_VARINT_MAX 10

/* Writes v as a varint at p (room for MOOR_VARINT_MAX bytes); returns the
 * number of bytes written. */
size_t moor_varint_put(uint8_t *p, uint64_t v);
/* Reads a varint from p[0..len). Returns the bytes consumed, or 0 when the
 * input is truncated or longer than 10 bytes or overflows 64 bits. */
size_t moor_varint_get(const uint8_t *p, size_t len, uint64_t *v);
/* Bytes moor_varint_put would write for v. */
size_t moor_varint_len(uint64_t v);

/* ------------------------------------------------------------------------
 * Logging: one line per event on stderr (or a sink set by tests), as
 * key=value text or JSON lines.
 *
 *   MOOR_LOG_INFO("wal", "segment created", "file=%s index=%lu", path, i);
 *
 * prints (text):
 *   2026-11-23T06:50:13.123Z INFO wal: segment created file=... index=...
 * or (json):
 *   {"ts":"...","level":"info","module":"wal","msg":"segment created",
 *    "fields":"file=... index=..."}
 * ---------------------------------------------------------------------- */
enum moor_log_level {
    MOOR_LOG_DEBUG = 0,
    MOOR_LOG_INFO = 1,
    MOOR_LOG_WARN = 2,
    MOOR_LOG_ERROR = 3,
    MOOR_LOG_FATAL = 4,
};

enum moor_log_format {
    MOOR_LOG_TEXT = 0,
    MOOR_LOG_JSON = 1,
};

typedef void (*moor_log_sink_fn)(enum moor_log_level level, const char *line,
                                 size_t len, void *arg);

void moor_log_set_level(enum moor_log_level level);
enum moor_log_level moor_log_get_level(void);
void moor_log_set_format(enum moor_log_format format);
/* Parses "debug", "info", "warn", "error", "fatal". MOOR_EINVAL otherwise. */
int moor_log_parse_level(const char *s, enum moor_log_level *out);
/* Tests: route lines to sink instead of stderr (NULL restores stderr). */
void moor_log_set_sink(moor_log_sink_fn sink, void *arg);

/* fields is a printf format for the key=value part (may be NULL). */
void moor_log(enum moor_log_level level, const char *module, const char *msg,
              const char *fields, ...) __attribute__((format(printf, 4, 5)));

#define MOOR_LOG_DEBUG(mod, msg, ...) \
    moor_log(MOOR_LOG_DEBUG, mod, msg, __VA_ARGS__)
#define MOOR_LOG_INFO(mod, msg, ...) \
    moor_log(MOOR_LOG_INFO, mod, msg, __VA_ARGS__)
#define MOOR_LOG_WARN(mod, msg, ...) \
    moor_log(MOOR_LOG_WARN, mod, msg, __VA_ARGS__)
#define MOOR_LOG_ERROR(mod, msg, ...) \
    moor_log(MOOR_LOG_ERROR, mod, msg, __VA_ARGS__)

/* Logs at FATAL and aborts. For states the process must not continue from
 * (an fsync that failed: the kernel may have dropped the dirty pages). */
_Noreturn void moor_fatal(const char *module, const char *msg,
                          const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------
 * Monotonic clock (never for raft/ or kv/: they take time as arguments).
 * ---------------------------------------------------------------------- */
uint64_t moor_clock_ns(void);
static inline uint64_t moor_clock_ms(void)
{
    return moor_clock_ns() / 1000000u;
}
/* Wall-clock time in nanoseconds since the epoch (logs, lease checkpoints
 * shown to users). */
uint64_t moor_clock_realtime_ns(void);

/* ------------------------------------------------------------------------
 * Seeded PRNG (xoshiro256**, seeded through splitmix64): the same seed gives
 * the same sequence on every machine, which the simulator relies on.
 * ---------------------------------------------------------------------- */
struct moor_prng
{
    uint64_t s[4];
};

void moor_prng_seed(struct moor_prng *r, uint64_t seed);
uint64_t moor_prng_next(struct moor_prng *r);
/* Uniform in [0, n); n > 0. Unbiased (rejection sampling). */
uint64_t moor_prng_below(struct moor_prng *r, uint64_t n);
/* Uniform in [lo, hi]; lo <= hi. */
uint64_t moor_prng_range(struct moor_prng *r, uint64_t lo, uint64_t hi);
/* True with probability p (0 <= p <= 1). */
bool moor_prng_chance(struct moor_prng *r, double p);
/* Uniform double in [0, 1). */
double moor_prng_double(struct moor_prng *r);

/* ------------------------------------------------------------------------
 * Small utilities
 * ---------------------------------------------------------------------- */
#define MOOR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MOOR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MOOR_MAX(a, b) ((a) > (b) ? (a) : (b))
#define MOOR_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Always-on assertion for invariants of raft/, wal/ and kv/ (programmer
 * errors only; never for bad input). Logs the expression and aborts. */
#define MOOR_ASSERT(expr)                                           \
    do {                                                            \
        if (__builtin_expect(!(expr), 0)) {                         \
            moor__assert_fail(#expr, __FILE__, __LINE__, __func__); \
        }                                                           \
    } while (0)

_Noreturn void moor__assert_fail(const char *expr, const char *file, int line,
                                 const char *func);

#endif /* MOOR_COMMON_H */
