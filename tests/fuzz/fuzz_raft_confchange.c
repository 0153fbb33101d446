/*
 * fuzz_raft_confchange.c: conf-change entry data is read back from the
 * WAL and from peers' appends. The decoder must accept exactly what the
 * encoder writes, and a node restored from a log holding such entries
 * must rebuild a valid configuration whatever they contain.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct raft_conf_change cc;
    if (raft_conf_change_decode(moor_slice_make(data, size), &cc) == MOOR_OK) {
        struct moor_bytes *b = raft_conf_change_encode(&cc);
        if (b == NULL || b->len != size || memcmp(b->data, data, size) != 0) {
            abort();
        }
        moor_bytes_unref(b);
    }
    /* The input split into entries, replayed by a restoring node. */
    struct raft_entry ents[16];
    size_t n = 0;
    size_t off = 0;
    while (off < size && n < 16) {
        size_t len = MOOR_MIN((size_t)data[off] % 24, size - off - 1);
        struct moor_bytes *b = moor_bytes_copy(data + off + 1, len);
        if (b == NULL) {
            break;
        }
        ents[n] = (struct raft_entry){.term = 1,
                                      .index = n + 1,
                                      .type = RAFT_ENTRY_CONF_CHANGE,
                                      .data = b};
        n++;
        off += len + 1;
    }
    struct raft_config c;
    raft_config_init(&c, 1);
    c.conf.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        c.conf.members[i].id = i + 1;
    }
    struct raft_restore r = {.hard_state = {.term = 1, .commit = n},
                             .entries = ents,
                             .n_entries = n};
    struct raft_node *node = NULL;
    if (raft_node_new(&c, &r, &node) == MOOR_OK) {
        const struct raft_conf *conf = raft_node_conf(node);
        if (conf->n > RAFT_MEMBERS_MAX) {
            abort();
        }
        for (uint32_t i = 0; i < conf->n; i++) {
            for (uint32_t j = 0; j < i; j++) {
                if (conf->members[i].id == 0 ||
                    conf->members[i].id == conf->members[j].id) {
                    abort();
                }
            }
        }
        if (raft_node_compact(node, 0, NULL) != MOOR_EINVAL) {
            abort();
        }
        raft_node_free(node);
    }
    for (size_t i = 0; i < n; i++) {
        moor_bytes_unref(ents[i].data);
    }
    return 0;
}
