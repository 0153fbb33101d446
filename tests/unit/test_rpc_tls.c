/*
 * test_rpc_tls.c: rpc/ over TLS on 127.0.0.1. Test material is made at
 * run time in a temporary directory (nothing private is committed): with
 * the openssl command-line tool a CA, a server certificate (SAN IP
 * 127.0.0.1 and DNS localhost), a client certificate, a second CA and a
 * client certificate of that one; with libcrypto an expired client
 * certificate of the first CA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "rpc/rpc.h"

static char dir[256];
static uv_loop_t *g_loop;

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[2400];
    snprintf(full, sizeof(full), "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
    return system(full);
}

/* A leaf certificate for name signed by ca (files <name>.key/.pem). */
static void make_leaf(const char *name, const char *ca, const char *ext)
{
    assert_int_equal(
        sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout %s.key -out %s.csr -subj /CN=%s && "
           "printf '%s\\n' > %s.ext && "
           "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key "
           "-CAcreateserial -days 2 -out %s.pem -extfile %s.ext",
           name, name, name, ext, name, name, ca, ca, name, name),
        0);
}

/* The expired client certificate, made with libcrypto: notBefore two days
 * ago, notAfter one day ago, signed by ca. */
static void make_expired(void)
{
    char p[300];
    path_of(p, sizeof(p), "ca.key");
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    EVP_PKEY *ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    path_of(p, sizeof(p), "ca.pem");
    f = fopen(p, "r");
    X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(ca_key);
    assert_non_null(ca);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400L);
    X509_gmtime_adj(X509_getm_notAfter(x), -1 * 86400L);
    X509_set_pubkey(x, key);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                               (const unsigned char *)"expired", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
    path_of(p, sizeof(p), "expired.pem");
    f = fopen(p, "w");
    PEM_write_X509(f, x);
    fclose(f);
    path_of(p, sizeof(p), "expired.key");
    f = fopen(p, "w");
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/moor-rpc-tls-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    for (int i = 1; i <= 2; i++) {
        const char *ca = i == 1 ? "ca" : "ca2";
        if (sh("openssl req -x509 -newkey ec -pkeyopt "
               "ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.pem "
               "-subj /CN=moor-test-%s -days 2",
               ca, ca, ca) != 0) {
            return -1;
        }
    }
    make_leaf("server", "ca",
              "subjectAltName=IP:127.0.0.1,DNS:localhost\\n"
              "extendedKeyUsage=serverAuth");
    make_leaf("client", "ca", "extendedKeyUsage=clientAuth");
    make_leaf("other", "ca2", "extendedKeyUsage=clientAuth");
    make_expired();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return sh("rm -rf '%s'", dir) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * Fixture: one server, TLS listener + cleartext listener.
 * ---------------------------------------------------------------------- */
struct fx
{
    uv_loop_t loop;
    struct rpc_server *srv;
    uint16_t tls_port;
    uint16_t plain_port;
    size_t alloc_before;
    char cert[300], key[300], ca[300], ca2[300];
    char ccert[300], ckey[300], ocert[300], okey[300], xcert[300], xkey[300];
    int streamed;
};

static void echo_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)arg;
    rpc_call_send(call, msg);
    rpc_call_finish(call, RPC_OK, NULL);
}

static void stream_more(struct rpc_call *call, void *arg)
{
    struct fx *f = arg;
    uint8_t m[100];
    memset(m, 's', sizeof(m));
    while (f->streamed < 10000) {
        moor_put_be32(m, (uint32_t)f->streamed);
        if (rpc_call_send(call, moor_slice_make(m, sizeof(m))) != MOOR_OK) {
            return;
        }
        f->streamed++;
    }
    rpc_call_finish(call, RPC_OK, NULL);
}

static void stream_msg(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)msg;
    stream_more(call, arg);
}

static int health_fn(const char *path, struct rpc_http_response *resp,
                     void *arg)
{
    (void)arg;
    if (strcmp(path, "/health") != 0) {
        resp->status = 404;
        return MOOR_OK;
    }
    return moor_buf_printf(&resp->body, "{\"health\":\"true\"}");
}

static void open_server(struct fx *f, bool client_auth)
{
    struct rpc_tls_config tls;
    memset(&tls, 0, sizeof(tls));
    tls.cert_file = f->cert;
    tls.key_file = f->key;
    if (client_auth) {
        tls.ca_file = f->ca;
        tls.client_cert_auth = true;
    }
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.tls = &tls;
    cfg.http_fn = health_fn;
    char err[MOOR_ERRMSG_SIZE] = "";
    assert_int_equal(rpc_server_open(&f->loop, &cfg, &f->srv, err), MOOR_OK);
    static const struct rpc_method_ops echo = {NULL, echo_msg, NULL, NULL,
                                               NULL};
    static const struct rpc_method_ops stream = {NULL, stream_msg, NULL,
                                                 stream_more, NULL};
    assert_int_equal(rpc_server_add_method(f->srv, "/t.E/Echo", &echo, f),
                     MOOR_OK);
    assert_int_equal(rpc_server_add_method(f->srv, "/t.E/Stream", &stream, f),
                     MOOR_OK);
    assert_int_equal(
        rpc_server_listen(f->srv, "127.0.0.1", 0, true, &f->tls_port, err),
        MOOR_OK);
    assert_int_equal(
        rpc_server_listen(f->srv, "127.0.0.1", 0, false, &f->plain_port, err),
        MOOR_OK);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    /* OpenSSL's caches (filled at the first handshake) are not rpc/'s. */
    f->alloc_before = moor_alloc_bytes() - rpc_openssl_bytes();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    g_loop = &f->loop;
    path_of(f->cert, sizeof(f->cert), "server.pem");
    path_of(f->key, sizeof(f->key), "server.key");
    path_of(f->ca, sizeof(f->ca), "ca.pem");
    path_of(f->ca2, sizeof(f->ca2), "ca2.pem");
    path_of(f->ccert, sizeof(f->ccert), "client.pem");
    path_of(f->ckey, sizeof(f->ckey), "client.key");
    path_of(f->ocert, sizeof(f->ocert), "other.pem");
    path_of(f->okey, sizeof(f->okey), "other.key");
    path_of(f->xcert, sizeof(f->xcert), "expired.pem");
    path_of(f->xkey, sizeof(f->xkey), "expired.key");
    *state = f;
    return 0;
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
    uv_stop(g_loop);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->srv != NULL) {
        bool closed = false;
        rpc_server_close(f->srv, 1000, set_flag, &closed);
        while (!closed) {
            uv_run(&f->loop, UV_RUN_ONCE);
        }
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(moor_alloc_bytes() - rpc_openssl_bytes(), f->alloc_before);
    free(f);
    return 0;
}

/* One unary call through a fresh client; returns the status and the
 * message in msg. */
static int call_once(struct fx *f, const char *endpoint,
                     const struct rpc_tls_config *tls, char *msg)
{
    const char *eps[] = {endpoint};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    cfg.tls = tls;
    struct rpc_client *cl;
    char err[MOOR_ERRMSG_SIZE] = "";
    assert_int_equal(rpc_client_open(&f->loop, &cfg, &cl, err), MOOR_OK);
    struct moor_buf resp;
    moor_buf_init(&resp);
    int st = rpc_client_unary_sync(cl, "/t.E/Echo", NULL, 0,
                                   moor_slice_str("hello"), 5000, &resp, msg);
    if (st == RPC_OK) {
        assert_int_equal(resp.len, 5);
        assert_memory_equal(resp.ptr, "hello", 5);
    }
    moor_buf_close(&resp);
    bool closed = false;
    rpc_client_close(cl, set_flag, &closed);
    while (!closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return st;
}

static void ep(char *out, size_t n, const char *scheme, const char *host,
               uint16_t port)
{
    snprintf(out, n, "%s://%s:%u", scheme, host, port);
}

static void test_rpc_tls_unary_verifies_server_by_ip_and_by_name(void **state)
{
    struct fx *f = *state;
    open_server(f, false);
    struct rpc_tls_config tls;
    memset(&tls, 0, sizeof(tls));
    tls.ca_file = f->ca;
    char e[64];
    char msg[MOOR_ERRMSG_SIZE];
    ep(e, sizeof(e), "https", "127.0.0.1", f->tls_port);
    assert_int_equal(call_once(f, e, &tls, msg), RPC_OK);
    ep(e, sizeof(e), "https", "localhost", f->tls_port);
    assert_int_equal(call_once(f, e, &tls, msg), RPC_OK);
    /* A scheme-less endpoint uses TLS when TLS settings are given. */
    snprintf(e, sizeof(e), "127.0.0.1:%u", f->tls_port);
    assert_int_equal(call_once(f, e, &tls, msg), RPC_OK);
}

static void test_rpc_tls_client_refuses_wrong_ca_and_wrong_name(void **state)
{
    struct fx *f = *state;
    open_server(f, false);
    struct rpc_tls_config tls;
    memset(&tls, 0, sizeof(tls));
    tls.ca_file = f->ca2;
    char e[64];
    char msg[MOOR_ERRMSG_SIZE];
    ep(e, sizeof(e), "https", "127.0.0.1", f->tls_port);
    assert_int_equal(call_once(f, e, &tls, msg), RPC_UNAVAILABLE);
    assert_non_null(strstr(msg, "certificate verify failed"));
    tls.ca_file = f->ca;
    tls.server_name = "not-this-server.example";
    assert_int_equal(call_once(f, e, &tls, msg), RPC_UNAVAILABLE);
    assert_non_null(strstr(msg, "certificate verify failed"));
    /* insecure_skip_verify accepts anything. */
    tls.ca_file = f->ca2;
    tls.insecure_skip_verify = true;
    assert_int_equal(call_once(f, e, &tls, msg), RPC_OK);
}

static void test_rpc_tls_client_certificates_are_checked(void **state)
{
    struct fx *f = *state;
    open_server(f, true);
    struct rpc_tls_config tls;
    memset(&tls, 0, sizeof(tls));
    tls.ca_file = f->ca;
    char e[64];
    char msg[MOOR_ERRMSG_SIZE];
    ep(e, sizeof(e), "https", "127.0.0.1", f->tls_port);
    /* No client certificate. */
    assert_int_equal(call_once(f, e, &tls, msg), RPC_UNAVAILABLE);
    /* One from another CA. */
    tls.cert_file = f->ocert;
    tls.key_file = f->okey;
    assert_int_equal(call_once(f, e, &tls, msg), RPC_UNAVAILABLE);
    /* An expired one. */
    tls.cert_file = f->xcert;
    tls.key_file = f->xkey;
    assert_int_equal(call_once(f, e, &tls, msg), RPC_UNAVAILABLE);
    /* The right one. */
    tls.cert_file = f->ccert;
    tls.key_file = f->ckey;
    assert_int_equal(call_once(f, e, &tls, msg), RPC_OK);
    /* The server lived through the refusals and holds nothing. */
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void test_rpc_tls_and_cleartext_ports_refuse_the_other_kind(void **state)
{
    struct fx *f = *state;
    open_server(f, false);
    char e[64];
    char msg[MOOR_ERRMSG_SIZE];
    /* Cleartext HTTP/2 to the TLS port. */
    ep(e, sizeof(e), "http", "127.0.0.1", f->tls_port);
    assert_int_equal(call_once(f, e, NULL, msg), RPC_UNAVAILABLE);
    /* TLS to the cleartext port. */
    struct rpc_tls_config tls;
    memset(&tls, 0, sizeof(tls));
    tls.ca_file = f->ca;
    ep(e, sizeof(e), "https", "127.0.0.1", f->plain_port);
    assert_int_equal(call_once(f, e, &tls, msg), RPC_UNAVAILABLE);
    /* Both ports still serve their own kind. */
    ep(e, sizeof(e), "http", "127.0.0.1", f->plain_port);
    assert_int_equal(call_once(f, e, NULL, msg), RPC_OK);
    ep(e, sizeof(e), "https", "127.0.0.1", f->tls_port);
    assert_int_equal(call_once(f, e, &tls, msg), RPC_OK);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

struct sres
{
    bool done;
    int status;
    int count;
    bool in_order;
};

static void sr_msg(struct rpc_stream *s, struct moor_slice m, void *arg)
{
    (void)s;
    struct sres *r = arg;
    if (m.len != 100 || moor_get_be32(m.ptr) != (uint32_t)r->count) {
        r->in_order = false;
    }
    r->count++;
}

static void sr_done(struct rpc_stream *s, int status, const char *message,
                    void *arg)
{
    (void)s;
    (void)message;
    struct sres *r = arg;
    r->done = true;
    r->status = status;
    uv_stop(g_loop);
}

static void test_rpc_tls_server_stream_of_10000_messages(void **state)
{
    struct fx *f = *state;
    open_server(f, true);
    struct rpc_tls_config tls;
    memset(&tls, 0, sizeof(tls));
    tls.ca_file = f->ca;
    tls.cert_file = f->ccert;
    tls.key_file = f->ckey;
    char e[64];
    ep(e, sizeof(e), "https", "localhost", f->tls_port);
    const char *eps[] = {e};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    cfg.tls = &tls;
    struct rpc_client *cl;
    assert_int_equal(rpc_client_open(&f->loop, &cfg, &cl, NULL), MOOR_OK);
    static const struct rpc_stream_ops ops = {sr_msg, NULL, sr_done};
    struct sres r = {false, -1, 0, true};
    struct rpc_stream *s;
    assert_int_equal(
        rpc_stream_start(cl, "/t.E/Stream", NULL, 0, 30000, &ops, &r, &s),
        MOOR_OK);
    rpc_stream_send(s, moor_slice_str("go"));
    rpc_stream_close_send(s);
    while (!r.done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(r.status, RPC_OK);
    assert_int_equal(r.count, 10000);
    assert_true(r.in_order);
    bool closed = false;
    rpc_client_close(cl, set_flag, &closed);
    while (!closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void test_rpc_tls_server_open_reports_bad_files(void **state)
{
    struct fx *f = *state;
    struct rpc_tls_config tls;
    memset(&tls, 0, sizeof(tls));
    tls.cert_file = "/nonexistent/cert.pem";
    tls.key_file = f->key;
    struct rpc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.tls = &tls;
    struct rpc_server *srv = NULL;
    char err[MOOR_ERRMSG_SIZE] = "";
    assert_int_equal(rpc_server_open(&f->loop, &cfg, &srv, err), MOOR_ETLS);
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));
    /* A key that does not match the certificate. */
    tls.cert_file = f->cert;
    tls.key_file = f->ckey;
    assert_int_equal(rpc_server_open(&f->loop, &cfg, &srv, err), MOOR_ETLS);
    /* Client-cert-auth without a CA. */
    tls.key_file = f->key;
    tls.client_cert_auth = true;
    assert_int_equal(rpc_server_open(&f->loop, &cfg, &srv, err), MOOR_EINVAL);
}

/* ------------------------------------------------------------------------
 * A blocking HTTP/1.1 client on its own thread (OpenSSL directly, or plain
 * TCP), while the test's loop serves.
 * ---------------------------------------------------------------------- */
struct h1_get
{
    uint16_t port;
    bool use_tls;
    int max_version; /* TLS1_2_VERSION or TLS1_3_VERSION */
    const char *ca;
    uv_async_t done;
    bool finished;
    int version; /* negotiated */
    char alpn[16];
    char resp[4096];
    size_t len;
};

static void h1_done_cb(uv_async_t *a)
{
    struct h1_get *g = a->data;
    g->finished = true;
    uv_close((uv_handle_t *)a, NULL);
    uv_stop(g_loop);
}

static void *h1_thread(void *arg)
{
    struct h1_get *g = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(g->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        if (!g->use_tls) {
            if (write(fd, req, sizeof(req) - 1) > 0) {
                ssize_t n;
                while (g->len < sizeof(g->resp) - 1 &&
                       (n = read(fd, g->resp + g->len,
                                 sizeof(g->resp) - 1 - g->len)) > 0) {
                    g->len += (size_t)n;
                }
            }
        } else {
            SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
            SSL_CTX_set_max_proto_version(ctx, g->max_version);
            SSL_CTX_load_verify_locations(ctx, g->ca, NULL);
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
            static const unsigned char alpn[] = {8,   'h', 't', 't', 'p',
                                                 '/', '1', '.', '1'};
            SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
            SSL *ssl = SSL_new(ctx);
            SSL_set_fd(ssl, fd);
            if (SSL_connect(ssl) == 1) {
                g->version = SSL_version(ssl);
                const unsigned char *p;
                unsigned plen;
                SSL_get0_alpn_selected(ssl, &p, &plen);
                snprintf(g->alpn, sizeof(g->alpn), "%.*s", (int)plen, p);
                SSL_write(ssl, req, sizeof(req) - 1);
                int n;
                while (g->len < sizeof(g->resp) - 1 &&
                       (n = SSL_read(ssl, g->resp + g->len,
                                     (int)(sizeof(g->resp) - 1 - g->len))) >
                           0) {
                    g->len += (size_t)n;
                }
            }
            SSL_free(ssl);
            SSL_CTX_free(ctx);
            ERR_clear_error();
        }
    }
    close(fd);
    g->resp[g->len] = '\0';
    uv_async_send(&g->done);
    return NULL;
}

static void h1_get(struct fx *f, struct h1_get *g)
{
    uv_async_init(&f->loop, &g->done, h1_done_cb);
    g->done.data = g;
    pthread_t t;
    pthread_create(&t, NULL, h1_thread, g);
    while (!g->finished) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    pthread_join(t, NULL);
}

static void test_rpc_tls_http1_health_over_tls_1_2_and_1_3(void **state)
{
    struct fx *f = *state;
    open_server(f, false);
    int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    for (size_t i = 0; i < 2; i++) {
        struct h1_get g;
        memset(&g, 0, sizeof(g));
        g.port = f->tls_port;
        g.use_tls = true;
        g.max_version = versions[i];
        g.ca = f->ca;
        h1_get(f, &g);
        assert_int_equal(g.version, versions[i]);
        assert_string_equal(g.alpn, "http/1.1");
        assert_non_null(strstr(g.resp, "HTTP/1.1 200 OK\r\n"));
        assert_non_null(strstr(g.resp, "{\"health\":\"true\"}"));
    }
    /* Cleartext HTTP to the TLS port: told so, in the clear. */
    struct h1_get g;
    memset(&g, 0, sizeof(g));
    g.port = f->tls_port;
    h1_get(f, &g);
    assert_non_null(strstr(g.resp, "HTTP/1.0 400 Bad Request"));
    assert_non_null(strstr(g.resp, "HTTPS server"));
    /* The cleartext port answers the same request. */
    memset(&g, 0, sizeof(g));
    g.port = f->plain_port;
    h1_get(f, &g);
    assert_non_null(strstr(g.resp, "HTTP/1.1 200 OK\r\n"));
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* Fails the Nth allocation from client open to the end of a unary call
 * over mutual TLS (connection setup included), for N up to 300: nothing
 * crashes, nothing leaks, and a clean call afterwards works. */
static void test_rpc_tls_every_allocation_failure_is_survived(void **state)
{
    struct fx *f = *state;
    open_server(f, true);
    struct rpc_tls_config tls;
    memset(&tls, 0, sizeof(tls));
    tls.ca_file = f->ca;
    tls.cert_file = f->ccert;
    tls.key_file = f->ckey;
    char e[64];
    ep(e, sizeof(e), "https", "127.0.0.1", f->tls_port);
    const char *eps[] = {e};
    struct rpc_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = eps;
    cfg.endpoints_len = 1;
    cfg.tls = &tls;
    int failed = 0;
    for (long n = 0; n < 300; n++) {
        moor_alloc_fail_after(n);
        struct rpc_client *cl = NULL;
        int st = -1;
        if (rpc_client_open(&f->loop, &cfg, &cl, NULL) == MOOR_OK) {
            struct moor_buf resp;
            moor_buf_init(&resp);
            char msg[MOOR_ERRMSG_SIZE];
            st = rpc_client_unary_sync(cl, "/t.E/Echo", NULL, 0,
                                       moor_slice_str("hello"), 5000, &resp,
                                       msg);
            moor_buf_close(&resp);
            moor_alloc_fail_after(-1);
            bool closed = false;
            rpc_client_close(cl, set_flag, &closed);
            while (!closed) {
                uv_run(&f->loop, UV_RUN_ONCE);
            }
        }
        moor_alloc_fail_after(-1);
        if (st != RPC_OK) {
            failed++;
        }
        char msg[MOOR_ERRMSG_SIZE];
        assert_int_equal(call_once(f, e, &tls, msg), RPC_OK);
    }
    assert_true(failed > 0);
    while (rpc_server_conn_count(f->srv) > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* rpc_global_init (called first in main) routes OpenSSL's and libuv's
 * heaps through moor_malloc: their allocations show in the counters. */
static void test_rpc_global_init_counts_openssl_and_libuv_allocations(
    void **state)
{
    struct fx *f = *state;
    size_t bytes = moor_alloc_bytes();
    size_t count = moor_alloc_count();
    size_t ossl = rpc_openssl_bytes();
    void *p = OPENSSL_malloc(1000);
    assert_non_null(p);
    assert_true(rpc_openssl_bytes() >= ossl + 1000);
    assert_int_equal(moor_alloc_bytes() - rpc_openssl_bytes(), bytes - ossl);
    p = OPENSSL_realloc(p, 3000);
    assert_non_null(p);
    assert_true(rpc_openssl_bytes() >= ossl + 3000);
    assert_int_equal(moor_alloc_bytes() - rpc_openssl_bytes(), bytes - ossl);
    OPENSSL_free(p);
    assert_int_equal(rpc_openssl_bytes(), ossl);
    assert_int_equal(moor_alloc_bytes(), bytes);
    uv_interface_address_t *ifs = NULL;
    int n = 0;
    assert_int_equal(uv_interface_addresses(&ifs, &n), 0);
    assert_true(n > 0); /* loopback at least */
    assert_true(moor_alloc_count() > count);
    uv_free_interface_addresses(ifs, n);
    assert_int_equal(moor_alloc_count(), count);
    assert_int_equal(moor_alloc_bytes(), bytes);
    /* A second call changes nothing and reports the first one's result. */
    assert_int_equal(rpc_global_init(), MOOR_OK);
    (void)f;
}

int main(void)
{
    if (rpc_global_init() != MOOR_OK) {
        fprintf(stderr, "rpc_global_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_rpc_global_init_counts_openssl_and_libuv_allocations),
        T(test_rpc_tls_unary_verifies_server_by_ip_and_by_name),
        T(test_rpc_tls_client_refuses_wrong_ca_and_wrong_name),
        T(test_rpc_tls_client_certificates_are_checked),
        T(test_rpc_tls_and_cleartext_ports_refuse_the_other_kind),
        T(test_rpc_tls_server_stream_of_10000_messages),
        T(test_rpc_tls_server_open_reports_bad_files),
        T(test_rpc_tls_http1_health_over_tls_1_2_and_1_3),
        T(test_rpc_tls_every_allocation_failure_is_survived),
#undef T
    };
    moor_log_set_level(MOOR_LOG_ERROR);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
