/// A bounds-checked little-endian reader over a byte array.
///
/// Every read that would run past the end throws a ``StorageError`` with code ``StorageError/Code/truncated``
/// and the offset at which the missing bytes were expected, so callers can name the file and position.
@usableFromInline
struct ByteReader {
    @usableFromInline let bytes: [UInt8]
    @usableFromInline var offset: Int
    /// Where `bytes[0]` sits in the file, for error messages.
    @usableFromInline let baseOffset: Int64

    @usableFromInline init(_ bytes: [UInt8], offset: Int = 0, baseOffset: Int64 = 0) {
        self.bytes = bytes
        self.offset = offset
        self.baseOffset = baseOffset
    }

    @usableFromInline var remaining: Int { bytes.count - offset }

    @usableFromInline func truncated(_ what: String) -> StorageError {
        StorageError(.truncated, "unexpected end of data reading \(what)", offset: baseOffset + Int64(offset))
    }

    @usableFromInline func corrupt(_ what: String) -> StorageError {
        StorageError(.corrupt, what, offset: baseOffset + Int64(offset))
    }

    @inlinable mutating func read<T: FixedWidthInteger>(_: T.Type = T.self, _ what: @autoclosure () -> String = "integer") throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw truncated(what()) }
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += size
        return T(littleEndian: v)
    }

    /// Returns the range of the next `count` bytes and advances past them.
    @inlinable mutating func skip(_ count: Int, _ what: @autoclosure () -> String = "bytes") throws -> Range<Int> {
        guard count >= 0, remaining >= count else { throw truncated(what()) }
        defer { offset += count }
        return offset..<(offset + count)
    }

    mutating func readString16(_ what: String = "string") throws -> String {
        let n = Int(try read(UInt16.self, what))
        let r = try skip(n, what)
        return String(decoding: bytes[r], as: UTF8.self)
    }
}
