/*
 * main.c: moord, the member daemon. Parses etcd's flags (and ETCD_*
 * variables), opens the member and runs its loop until SIGTERM or SIGINT.
 * Exit status: 0 after a clean stop, 1 when the member fails, 2 for bad
 * flags.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "server_int.h"

extern char **environ;

int main(int argc, char **argv)
{
    rpc_global_init(); /* first: libuv's and OpenSSL's heaps are counted */
    struct srv_config cfg;
    char errmsg[MOOR_ERRMSG_SIZE];
    srv_config_init(&cfg);
    if (srv_config_parse(&cfg, argc, argv, environ, errmsg) != MOOR_OK) {
        fprintf(stderr, "moord: %s\nTry 'moord --help' for the flags.\n",
                errmsg);
        srv_config_close(&cfg);
        return 2;
    }
    if (cfg.want_help) {
        srv_config_print_help(stdout);
        srv_config_close(&cfg);
        return 0;
    }
    if (cfg.want_version) {
        printf("moord Version: 0.1.0\netcd API Version: %s\n",
               SRV_ETCD_VERSION);
        srv_config_close(&cfg);
        return 0;
    }
    /* A peer or client that vanishes must cost a write error, not the
     * process: writes to a closed socket report EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);
    moor_log_set_level(cfg.log_level);
    moor_log_set_format(cfg.log_format);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv_node *n = moor_malloc(sizeof(*n));
    if (n == NULL) {
        fprintf(stderr, "moord: out of memory\n");
        return 1;
    }
    int status = 0;
    if (srv_node_open(n, &loop, &cfg) != MOOR_OK) {
        MOOR_LOG_ERROR("node", "cannot start the member", "reason=\"%s\"",
                       n->errmsg);
        fprintf(stderr, "moord: %s\n", n->errmsg);
        status = 1;
        srv_node_abort(n);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    srv_node_close(n);
    moor_free(n);
    uv_loop_close(&loop);
    srv_config_close(&cfg);
    if (status == 0) {
        MOOR_LOG_INFO("node", "stopped", NULL);
    }
    return status;
}
