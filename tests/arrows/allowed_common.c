/* A module that links only moor_common may include common's header. */
#include "common/common.h"

int arrow_probe_allowed(void);
int arrow_probe_allowed(void)
{
    return MOOR_OK;
}
