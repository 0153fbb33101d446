/* main.c: moorctl, the etcdctl-compatible command-line client. */
#include <stdio.h>

#include "cli/cli.h"
#include "rpc/rpc.h"

int main(int argc, char **argv)
{
    rpc_global_init(); /* first: libuv's and OpenSSL's heaps are counted */
    return mc_main(argc, argv, stdin, stdout, stderr);
}
