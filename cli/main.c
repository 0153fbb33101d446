/* main.c: moorctl, the etcdctl-compatible command-line client. */
#include <stdio.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
    return mc_main(argc, argv, stdin, stdout, stderr);
}
