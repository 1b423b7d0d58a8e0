#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one order of metric keys: bytewise on their UTF-8 (`memcmp`). Segments keep their series in it, SQLite's
/// binary collation sorts in it, and runs keep their latest values in it.
public enum KeyOrder {
    /// `< 0`, `0` or `> 0` as `a` sorts before, with or after `b` (borrowing both strings' bytes, no copies).
    @inlinable
    public static func compare(_ a: String, _ b: String) -> Int {
        let fast = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in compare(x, y) }
        }
        if let c = fast ?? nil { return c }
        return a.utf8.elementsEqual(b.utf8) ? 0 : (a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1)
    }

    /// Whether `a` sorts before `b`.
    @inlinable
    public static func less(_ a: String, _ b: String) -> Bool { compare(a, b) < 0 }

    /// `< 0`, `0` or `> 0` as the bytes `x` sort before, with or after `y`.
    @inlinable
    public static func compare(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Int {
        let n = min(x.count, y.count)
        let c = n == 0 ? 0 : Int(memcmp(x.baseAddress!, y.baseAddress!, n))
        return c != 0 ? c : x.count - y.count
    }
}
