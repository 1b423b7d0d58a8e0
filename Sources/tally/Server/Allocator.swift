import CTallyShims
#if canImport(Glibc)
import Glibc
#endif

/// glibc malloc settings for the long-running server. By default glibc keeps up to 8 arenas per core and raises its
/// mmap threshold after each large free, so the big transient buffers of wide answers (a search page of 100 runs ×
/// 2,000 metrics is ~16 MB of JSON) end up in arenas that keep them resident: RSS after a few such reads was 1.7×
/// what it was after ingest. A fixed 1 MiB threshold maps and unmaps large buffers, and one arena per core bounds
/// the rest. Settings given in the environment (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`) win.
enum Allocator {
    static func tuneForServer() {
        #if canImport(Glibc)
        let threshold: Int32 = getenv("MALLOC_MMAP_THRESHOLD_") == nil ? 1 << 20 : 0
        let arenas: Int32 = getenv("MALLOC_ARENA_MAX") == nil ? Int32(max(2, sysconf(Int32(_SC_NPROCESSORS_ONLN)))) : 0
        tally_tune_malloc(threshold, arenas)
        #endif
    }
}
