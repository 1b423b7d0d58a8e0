#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import SystemPackage

/// Tests only: fsyncs of files under chosen directories fail with `EIO`, as a failing disk's do, so the paths that
/// must close the write-ahead log after one can be exercised. Empty in normal operation, where an fsync pays one
/// relaxed load for it. Linux only (the file of a descriptor is read from `/proc/self/fd`).
final class FailingSyncs: Sendable {
    private let count = Atomic<Int>(0)
    private let directories = Mutex<[String]>([])

    /// Makes fsyncs of files under `directory` fail until ``stop(_:)``.
    func start(_ directory: String) {
        directories.withLock { $0.append(directory.hasSuffix("/") ? directory : directory + "/") }
        count.add(1, ordering: .releasing)
    }

    /// Lets fsyncs under `directory` succeed again.
    func stop(_ directory: String) {
        let d = directory.hasSuffix("/") ? directory : directory + "/"
        directories.withLock { list in
            if let i = list.firstIndex(of: d) {
                list.remove(at: i)
                count.subtract(1, ordering: .releasing)
            }
        }
    }

    /// Whether an fsync of `fd` is to fail.
    func fails(_ fd: FileDescriptor) -> Bool {
        guard count.load(ordering: .relaxed) > 0 else { return false }
        #if os(Linux)
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buffer.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { readlink("/proc/self/fd/\(fd.rawValue)", $0, b.count - 1) }
        }
        guard n > 0 else { return false }
        let path = String(decoding: buffer[0..<n], as: UTF8.self)
        return directories.withLock { $0.contains { path.hasPrefix($0) } }
        #else
        return false
        #endif
    }
}

extension FileIO {
    /// The directories whose fsyncs fail (tests).
    static let failingSyncs = FailingSyncs()
}
