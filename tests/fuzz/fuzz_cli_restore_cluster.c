/*
 * fuzz_cli_restore_cluster.c: arbitrary bytes as `moorctl snapshot
 * restore`'s membership flags. The input is split at its first two NUL
 * bytes into --initial-cluster, --name and --initial-advertise-peer-urls
 * (missing parts are empty). No input may crash, read out of bounds or
 * leak. A parse that succeeds names a member (self < n, its name is
 * --name), and its Membership encoding decodes with the same cluster id,
 * member count and ids.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) {
        return 0;
    }
    char *text = malloc(size + 3);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = text[size + 1] = text[size + 2] = '\0';
    const char *cluster = text;
    const char *name = cluster + strlen(cluster) + 1;
    if (name > text + size) {
        name = text + size + 1;
    }
    const char *adv = name + strlen(name) + 1;
    if (adv > text + size + 1) {
        adv = text + size + 2;
    }
    struct mc_restore_cluster *rc = malloc(sizeof(*rc));
    char errtext[MOOR_ERRMSG_SIZE];
    size_t before = moor_alloc_bytes();
    if (rc != NULL && mc_restore_cluster_parse(cluster, "tok", name, adv, rc,
                                               errtext) == MOOR_OK) {
        if (rc->self >= rc->n || strcmp(rc->members[rc->self].name, name)) {
            abort();
        }
        struct moor_buf enc;
        moor_buf_init(&enc);
        if (mc_restore_membership_encode(rc, &enc) == MOOR_OK) {
            Moorpb__Membership *ms = moorpb__membership__unpack(
                &moor_pb_allocator, enc.len, enc.ptr);
            if (ms == NULL || ms->cluster_id != rc->cluster_id ||
                ms->n_members != rc->n) {
                abort();
            }
            for (size_t i = 0; i < rc->n; i++) {
                if (ms->members[i]->id != rc->members[i].id) {
                    abort();
                }
            }
            moorpb__membership__free_unpacked(ms, &moor_pb_allocator);
        }
        moor_buf_close(&enc);
    }
    if (moor_alloc_bytes() != before) {
        abort();
    }
    free(rc);
    free(text);
    return 0;
}
