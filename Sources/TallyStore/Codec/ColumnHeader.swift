/// The first 8 bytes of every column: `kind: u8, transform: u8, width: u8, reserved: u8, count: u32`.
@usableFromInline
struct ColumnHeader {
    @usableFromInline var kind: UInt8
    @usableFromInline var transform: UInt8
    @usableFromInline var width: Int
    @usableFromInline var count: Int

    func write(into w: inout ByteWriter) {
        w.write(kind)
        w.write(transform)
        w.write(UInt8(width))
        w.write(UInt8(0))
        w.write(UInt32(count))
    }

    /// Reads a header, checking the kind and that the column holds exactly `expectedCount` values.
    static func read(_ r: inout ByteReader, kind: UInt8, expectedCount: Int, name: String) throws -> ColumnHeader {
        let at = r.baseOffset + Int64(r.offset)
        let k = try r.read(UInt8.self, "\(name) column kind")
        guard k == kind else { throw StorageError(.corrupt, "expected a \(name) column (kind \(kind)), found kind \(k)", offset: at) }
        let t = try r.read(UInt8.self, "\(name) column transform")
        let width = Int(try r.read(UInt8.self, "\(name) column width"))
        _ = try r.read(UInt8.self, "\(name) column reserved")
        let n = Int(try r.read(UInt32.self, "\(name) column count"))
        guard n == expectedCount else {
            throw StorageError(.corrupt, "\(name) column holds \(n) values, index says \(expectedCount)", offset: at)
        }
        return ColumnHeader(kind: k, transform: t, width: width, count: n)
    }
}
