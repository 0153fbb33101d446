/* A module that links only moor_common cannot see the protobuf messages:
 * this file must fail to compile. */
#include "proto/proto.h"

int arrow_probe_proto(void);
int arrow_probe_proto(void)
{
    return (int)sizeof(Etcdserverpb__PutRequest);
}
