/// Encodes and decodes single columns in the segment format, outside any store: for benchmarks, tools and tests.
///
/// Holds compression contexts, so it is not thread-safe: use one per thread.
public final class ColumnCodec {
    private let planes = PlaneCodec()
    /// The compression applied to byte planes.
    public let compression: Compression

    /// Creates a codec.
    public init(compression: Compression = .default) { self.compression = compression }

    /// Encodes an integer column (steps, timestamps).
    public func encode(integers xs: [Int64]) throws -> [UInt8] {
        var w = ByteWriter(capacity: xs.count)
        try xs.withUnsafeBufferPointer { try IntColumnCodec.encode($0, compression: compression, planes: planes, into: &w) }
        return w.bytes
    }

    /// Decodes an integer column of `count` values.
    public func decodeIntegers(_ bytes: [UInt8], count: Int) throws -> [Int64] {
        var r = ByteReader(bytes)
        return try [Int64](unsafeUninitializedCapacity: count) { buf, n in
            try IntColumnCodec.decode(&r, expectedCount: count, planes: planes, into: buf)
            n = count
        }
    }

    /// Encodes a value column bit-exactly.
    public func encode(values xs: [Double]) throws -> [UInt8] {
        var w = ByteWriter(capacity: xs.count * 2)
        try xs.withUnsafeBufferPointer { p in
            try p.withMemoryRebound(to: UInt64.self) { try FloatColumnCodec.encode($0, compression: compression, planes: planes, into: &w) }
        }
        return w.bytes
    }

    /// Decodes a value column of `count` values.
    public func decodeValues(_ bytes: [UInt8], count: Int) throws -> [Double] {
        var r = ByteReader(bytes)
        return try [Double](unsafeUninitializedCapacity: count) { buf, n in
            try buf.withMemoryRebound(to: UInt64.self) { try FloatColumnCodec.decode(&r, expectedCount: count, planes: planes, into: $0) }
            n = count
        }
    }
}
