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
            try p.withMemoryRebound(to: UInt64.self) { _ = try FloatColumnCodec.encode($0, compression: compression, planes: planes, into: &w) }
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

    /// Encodes a small table: `integers` and `values` columns, all of one length, one after the other in one
    /// self-delimiting blob (`u32 count`, then each column in the segment encoding). For compact rows outside the
    /// store, such as a run's latest values in a metadata database.
    public func encode(table integers: [[Int64]], values: [[Double]]) throws -> [UInt8] {
        let count = integers.first?.count ?? values.first?.count ?? 0
        precondition(integers.allSatisfy { $0.count == count } && values.allSatisfy { $0.count == count }, "table columns differ in length")
        guard count <= Self.maxTableRows else { throw StorageError(.invalidArgument, "a table holds at most \(Self.maxTableRows) rows") }
        var w = ByteWriter(capacity: 16 + count * (integers.count + values.count) * 2)
        w.write(UInt32(count))
        for c in integers { try c.withUnsafeBufferPointer { try IntColumnCodec.encode($0, compression: compression, planes: planes, into: &w) } }
        for c in values {
            try c.withUnsafeBufferPointer { p in
                try p.withMemoryRebound(to: UInt64.self) { _ = try FloatColumnCodec.encode($0, compression: compression, planes: planes, into: &w) }
            }
        }
        return w.bytes
    }

    /// Most rows ``decodeTable(_:integerColumns:valueColumns:)`` accepts (a damaged count must not allocate gigabytes).
    public static let maxTableRows = 1 << 22

    /// Decodes what ``encode(table:values:)`` wrote, given how many columns of each kind it holds.
    /// - Throws: ``StorageError`` (`truncated` or `corrupt`) when the bytes are not such a table.
    public func decodeTable(_ bytes: [UInt8], integerColumns: Int, valueColumns: Int) throws -> (integers: [[Int64]], values: [[Double]]) {
        var r = ByteReader(bytes)
        let count = Int(try r.read(UInt32.self, "table row count"))
        guard count <= Self.maxTableRows else { throw r.corrupt("table claims \(count) rows") }
        var ints: [[Int64]] = []
        for _ in 0..<integerColumns {
            ints.append(try [Int64](unsafeUninitializedCapacity: count) { buf, n in
                try IntColumnCodec.decode(&r, expectedCount: count, planes: planes, into: buf)
                n = count
            })
        }
        var vals: [[Double]] = []
        for _ in 0..<valueColumns {
            vals.append(try [Double](unsafeUninitializedCapacity: count) { buf, n in
                try buf.withMemoryRebound(to: UInt64.self) { try FloatColumnCodec.decode(&r, expectedCount: count, planes: planes, into: $0) }
                n = count
            })
        }
        guard r.remaining == 0 else { throw r.corrupt("\(r.remaining) unexpected bytes after the table") }
        return (ints, vals)
    }
}
