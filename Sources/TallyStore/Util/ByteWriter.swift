/// A growable little-endian byte buffer used to build segment files and column chunks.
///
/// Hot codec loops write through ``withUnsafeAppendingSpace(_:_:)`` straight into the storage;
/// the typed helpers are for headers and footers.
@usableFromInline
struct ByteWriter {
    @usableFromInline var bytes: [UInt8]

    @usableFromInline init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @usableFromInline var count: Int { bytes.count }

    @inlinable mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inlinable mutating func write(bytes other: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: other)
    }

    @inlinable mutating func write(bytes other: [UInt8]) {
        bytes.append(contentsOf: other)
    }

    /// Writes a UTF-8 string prefixed by its length as a `UInt16`.
    mutating func writeString16(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            write(UInt16(truncatingIfNeeded: utf8.count))
            bytes.append(contentsOf: UnsafeRawBufferPointer(utf8))
        }
    }

    /// Overwrites a previously written integer at `offset`.
    @inlinable mutating func patch<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { src in
            bytes.withUnsafeMutableBytes { dst in
                dst.baseAddress!.advanced(by: offset).copyMemory(from: src.baseAddress!, byteCount: src.count)
            }
        }
    }

    /// Reserves `maxCount` bytes at the end, lets `body` fill a prefix of them and keeps exactly the
    /// `written` bytes it reports.
    @inlinable mutating func withUnsafeAppendingSpace<R>(
        _ maxCount: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> (written: Int, result: R)
    ) rethrows -> R {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: maxCount))
        let (written, result) = try bytes.withUnsafeMutableBytes { all in
            try body(UnsafeMutableRawBufferPointer(rebasing: all[start..<(start + maxCount)]))
        }
        precondition(written <= maxCount)
        bytes.removeLast(maxCount - written)
        return result
    }
}
