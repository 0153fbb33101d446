/*
 * raft/raft.h: the Raft consensus algorithm as a pure state machine.
 *
 * (Being written: the raft issue fills in the node API. The types below are
 * shared with wal/ and must stay stable: wal/ persists them.)
 *
 * raft/ includes only common/ and libc: no I/O, no clock, no threads.
 */
#ifndef MOOR_RAFT_H
#define MOOR_RAFT_H

#include <stdint.h>

#include "common/common.h"

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0,      /* application data (may be empty) */
    RAFT_ENTRY_CONF_CHANGE = 1, /* an encoded membership change */
};

/* One log entry. data is refcounted and may be NULL (an empty entry, as a
 * new leader appends at the start of its term, §8). */
struct raft_entry
{
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum raft_entry_type */
    struct moor_bytes *data;
};

/* The state Raft must persist before answering any message (Figure 2). */
struct raft_hard_state
{
    uint64_t term;
    uint64_t vote; /* member id voted for in term, 0 = none */
    uint64_t commit;
};

#endif /* MOOR_RAFT_H */
