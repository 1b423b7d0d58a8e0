#include "CTallyShims.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void tally_tune_malloc(int mmap_threshold, int arenas) {
#if defined(__GLIBC__)
    if (mmap_threshold > 0) mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    if (arenas > 0) mallopt(M_ARENA_MAX, arenas);
#else
    (void)mmap_threshold;
    (void)arenas;
#endif
}
