/// An error raised by the storage engine.
///
/// Every error carries a stable ``Code``, a human-readable message and, where it applies, the file and
/// byte offset it concerns, so a corrupt or truncated file is always reported precisely.
public struct StorageError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of failure. An extensible set of static members, so new codes do not break callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name.
        public let name: String
        private init(_ name: String) { self.name = name }
        /// A file's bytes fail a checksum, a magic number or a structural check.
        public static let corrupt = Code("corrupt")
        /// A file ends before a structure it must contain.
        public static let truncated = Code("truncated")
        /// A file was written by a newer, unknown format version.
        public static let unsupportedFormat = Code("unsupportedFormat")
        /// An operating-system call failed (see ``StorageError/errno``).
        public static let io = Code("io")
        /// A caller passed arguments the engine cannot accept.
        public static let invalidArgument = Code("invalidArgument")
        /// The store was closed.
        public static let closed = Code("closed")
        /// Another open store holds the directory.
        public static let locked = Code("locked")
        /// Appends are refused for now: the heads hold as much as memory allows until queued seals catch up
        /// (see ``StoreConfiguration/sealsInBackground``). Nothing was stored; retry shortly.
        public static let overloaded = Code("overloaded")
        /// A compression library reported an error.
        public static let compression = Code("compression")
        /// The description is the code's name.
        public var description: String { name }
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong, in words.
    public var message: String
    /// The file concerned, when there is one.
    public var path: String?
    /// The byte offset in ``path`` where the problem was found, when known.
    public var offset: Int64?
    /// The operating system's error number for ``Code/io`` failures.
    public var errno: Int32?

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: What went wrong.
    ///   - path: The file concerned.
    ///   - offset: The byte offset in `path`.
    ///   - errno: The operating system's error number.
    public init(_ code: Code, _ message: String, path: String? = nil, offset: Int64? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.errno = errno
    }

    /// `code: message (file path at offset N)`.
    public var description: String {
        var s = "\(code): \(message)"
        if let path {
            s += " (file \(path)"
            if let offset { s += " at offset \(offset)" }
            s += ")"
        } else if let offset {
            s += " (at offset \(offset))"
        }
        if let errno { s += " [errno \(errno)]" }
        return s
    }

    /// Returns a copy with the file path set, keeping any offset already recorded.
    func at(path: String, baseOffset: Int64 = 0) -> StorageError {
        var e = self
        if e.path == nil { e.path = path }
        if let o = e.offset { e.offset = o + baseOffset } else if baseOffset != 0 { e.offset = baseOffset }
        return e
    }
}
