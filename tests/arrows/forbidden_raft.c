/* A module that links only moor_common (like kv/) cannot see raft's header:
 * this file must fail to compile. */
#include "raft/raft.h"

int arrow_probe_raft(void);
int arrow_probe_raft(void)
{
    return RAFT_ENTRY_NORMAL;
}
