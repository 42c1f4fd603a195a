#ifndef VARSTORE_ALLOCATION_COUNTER_H
#define VARSTORE_ALLOCATION_COUNTER_H

#include <stdint.h>

/// Heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made
/// by this process since it started, or -1 where this build cannot count them (not glibc).
/// `varstore bench` reads it before and after a run of requests (spec/benchmark.md).
int64_t varstore_allocation_count(void);

#endif
