/// When an append is acknowledged relative to the disk.
public enum Durability: Sendable, Equatable, CustomStringConvertible {
    /// An append returns after an `fdatasync` covering it. Concurrent appends share one fsync (group commit).
    case sync
    /// Appends return after the write; a background task fsyncs every `milliseconds`.
    case batch(milliseconds: Int)
    /// Appends return after the write; the log is fsynced only on rotation and close (process crashes lose
    /// nothing, power loss may lose the unsynced tail).
    case none

    /// `sync`, `batch:N` or `none`.
    public var description: String {
        switch self {
        case .sync: "sync"
        case .batch(let ms): "batch:\(ms)"
        case .none: "none"
        }
    }

    /// Parses ``description``'s forms (`batch` alone means 10 ms).
    public init?(parsing text: String) {
        switch text {
        case "sync": self = .sync
        case "none": self = .none
        case "batch": self = .batch(milliseconds: 10)
        default:
            guard text.hasPrefix("batch:"), let ms = Int(text.dropFirst(6)), ms > 0 else { return nil }
            self = .batch(milliseconds: ms)
        }
    }
}

/// Tunables of the write-ahead log.
public struct WALConfiguration: Sendable {
    /// When appends are acknowledged.
    public var durability: Durability = .sync
    /// In `sync` mode, how long the thread about to fsync waits for appends already under way to join it.
    /// It waits only while such appends exist, so a lone writer pays nothing.
    public var groupCommitWindowMicroseconds: Int = 2_000
    /// A WAL segment file is closed and a new one started past this size.
    public var segmentBytes: Int = 64 << 20
    /// Compress the columns of point records with lz4 when it saves at least 1/8.
    public var compress: Bool = true
    /// When the log holds more closed segments than this, the runs pinning the oldest one are sealed so it can be
    /// removed.
    public var maxSegments: Int = 8
    /// In `sync` mode, the current segment is extended ahead of its records by this many bytes of zeros (0: never),
    /// so an append's `fdatasync` writes data only: appending to the file's end also changes its size and allocates
    /// blocks, which makes every `fdatasync` commit the file system's journal too (ext4: 298 → 212 µs per 300-byte
    /// append's sync on this project's machine). Recovery reads an all-zero tail as the log's end; a closed segment
    /// is cut back to its records.
    public var preallocateBytes: Int = 4 << 20

    /// The defaults: `sync`, 2 ms group window, 64 MiB segments, lz4.
    public init() {}
}
