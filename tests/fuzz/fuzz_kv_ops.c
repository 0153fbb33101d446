/*
 * fuzz_kv_ops.c: a differential fuzz target for kv/. The fuzzer's bytes
 * are the choices of the randomized model test (tests/unit/test_kv_model.h):
 * which operation comes next (put, delete, txn with nested txns, lease
 * grant/revoke, compact, compaction steps, watch open/drain, stale index)
 * and every key, value, range and flag in it. Each step runs on the store
 * and on the reference model and the results are compared; at the end the
 * watchers' events are checked and the store is dumped and reloaded. Any
 * disagreement aborts.
 */
#include <stddef.h>
#include <stdint.h>

#include "../unit/test_kv_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Bounded work per input: at most 400 steps. */
    kv_model_run(0, data, size, 400);
    return 0;
}
