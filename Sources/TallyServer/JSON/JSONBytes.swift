#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import TallyTracking

/// A byte-level JSON writer for the large responses (metric histories, searches of wide runs): text goes straight
/// into the response's own `ByteBuffer` storage through a raw pointer, numbers formatted in place; the one writer of
/// JSON numbers (`JSONWriter` uses it for small answers).
///
/// The buffer is owned by this non-copyable writer alone and only grows in ``reserve(_:)``, which takes a fresh
/// pointer afterwards, so the pointer always addresses live, uniquely owned storage. Handing the buffer over costs
/// no copy (a 20 MB search answer used to be written twice, page faults included).
struct JSONBytes: ~Copyable {
    private var storage: ByteBuffer
    private var base: UnsafeMutablePointer<UInt8>
    private var count = 0
    private var capacity: Int
    /// Remembered doubles (``rememberDoubles()``), `nil` unless asked for.
    private var memo: UnsafeMutablePointer<MemoEntry>?

    /// An empty writer with room for `capacity` bytes.
    init(capacity: Int) {
        storage = ByteBufferAllocator().buffer(capacity: max(64, capacity))
        (base, self.capacity) = Self.window(&storage, written: 0)
    }

    deinit { memo?.deallocate() }

    /// Where writing continues in `b` (whose first `written` bytes are the output so far), and its capacity.
    private static func window(_ b: inout ByteBuffer, written: Int) -> (UnsafeMutablePointer<UInt8>, Int) {
        b.withUnsafeMutableWritableBytes { w in
            (w.baseAddress!.assumingMemoryBound(to: UInt8.self) - written, written + w.count)
        }
    }

    /// The output as a `ByteBuffer` (no copy: the writer's own storage).
    var buffer: ByteBuffer {
        var b = storage
        b.moveWriterIndex(forwardBy: count - b.writerIndex)
        return b
    }

    /// Makes room for `n` more bytes and returns where they go.
    @inline(__always)
    private mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if count &+ n > capacity { grow(n) }
        return base + count
    }

    /// Grows the storage: the bytes written so far become the buffer's readable part, so the reallocation keeps them.
    private mutating func grow(_ n: Int) {
        storage.moveWriterIndex(forwardBy: count - storage.writerIndex)
        storage.reserveCapacity(minimumWritableBytes: max(capacity, n))
        (base, capacity) = Self.window(&storage, written: count)
    }

    /// Appends ASCII text.
    @inline(__always)
    mutating func raw(_ s: StaticString) {
        let n = s.utf8CodeUnitCount
        reserve(n).update(from: s.utf8Start, count: n)
        count &+= n
    }

    /// Appends already-rendered JSON (a separate name, so string literals always take the `StaticString` path).
    mutating func rawText(_ s: String) {
        var s = s
        s.withUTF8 { u in
            guard let src = u.baseAddress else { return }
            reserve(u.count).update(from: src, count: u.count)
            count &+= u.count
        }
    }

    /// Appends a JSON string literal (``JSONText/write(_:_:)``'s escaping, straight into the buffer). A string with
    /// nothing to escape (metric keys, run ids) is copied in one piece.
    mutating func string(_ s: String) {
        var s = s
        let plain = s.withUTF8 { u -> Bool in
            guard Self.isPlain(u) else { return false }
            let p = reserve(u.count &+ 2)
            p[0] = 0x22
            if let src = u.baseAddress { (p + 1).update(from: src, count: u.count) }
            p[u.count &+ 1] = 0x22
            count &+= u.count &+ 2
            return true
        }
        if !plain { JSONText.write(s) { bytes($0) } }
    }

    /// Whether UTF-8 text needs no escaping in a JSON string (no `"`, `\\` or control character), eight bytes at a
    /// time: a byte below 0x20 or equal to 0x22 or 0x5C sets its high bit in the usual SWAR tests.
    @inline(__always)
    static func isPlain(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let p = u.baseAddress else { return true }
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        while i &+ 8 <= u.count {
            let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
            let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5C)
            let hit = ((w &- ones &* 0x20) | (quote &- ones) | (backslash &- ones)) & ~w & highs
            // `~w` keeps bytes ≥ 0x80 (UTF-8 continuation and lead bytes) out; the quote/backslash tests can only
            // fire for a byte equal to them or, through a borrow, next to one that is: a hit is re-checked bytewise.
            if hit != 0 {
                for j in i..<(i &+ 8) where p[j] == 0x22 || p[j] == 0x5C || p[j] < 0x20 { return false }
            }
            i &+= 8
        }
        while i < u.count {
            if p[i] == 0x22 || p[i] == 0x5C || p[i] < 0x20 { return false }
            i &+= 1
        }
        return true
    }

    /// Decimal digits of `m` (comparisons, no loop below 10¹⁰).
    @inline(__always)
    static func digitCount(_ m: UInt64) -> Int {
        if m < 100_000 { return m < 100 ? (m < 10 ? 1 : 2) : (m < 1_000 ? 3 : (m < 10_000 ? 4 : 5)) }
        if m < 10_000_000_000 {
            return m < 10_000_000 ? (m < 1_000_000 ? 6 : 7) : (m < 100_000_000 ? 8 : (m < 1_000_000_000 ? 9 : 10))
        }
        var n = 10
        var t = m / 10_000_000_000
        while t > 0 {
            n &+= 1
            t /= 10
        }
        return n
    }

    /// Appends a decimal integer.
    mutating func int(_ v: Int64) {
        let p = reserve(20)
        var m = v.magnitude
        var k = Self.digitCount(m) &+ (v < 0 ? 1 : 0)
        if v < 0 { p[0] = UInt8(ascii: "-") }
        count &+= k
        while m >= 100 {
            let r = m % 100
            m /= 100
            k &-= 2
            p[k] = 0x30 &+ UInt8(truncatingIfNeeded: r / 10)
            p[k &+ 1] = 0x30 &+ UInt8(truncatingIfNeeded: r % 10)
        }
        if m >= 10 {
            p[k &- 2] = 0x30 &+ UInt8(truncatingIfNeeded: m / 10)
            p[k &- 1] = 0x30 &+ UInt8(truncatingIfNeeded: m % 10)
        } else {
            p[k &- 1] = 0x30 &+ UInt8(truncatingIfNeeded: m)
        }
    }

    /// Appends a double for Tally's own API: NaN and ±∞ as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
    mutating func exactDouble(_ v: Double) {
        if v.isInfinite {
            raw(v > 0 ? "\"Infinity\"" : "\"-Infinity\"")
        } else {
            double(v)
        }
    }

    /// Appends raw bytes.
    mutating func bytes(_ b: UnsafeRawBufferPointer) {
        guard let src = b.baseAddress, b.count > 0 else { return }
        UnsafeMutableRawPointer(reserve(b.count)).copyMemory(from: src, byteCount: b.count)
        count &+= b.count
    }

    /// Appends zero bytes up to a multiple of `alignment`.
    mutating func pad(to alignment: Int) {
        while count % alignment != 0 {
            reserve(1).pointee = 0
            count &+= 1
        }
    }

    /// The output as text.
    var text: String { String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self) }

    /// Bytes written so far.
    var length: Int { count }

    /// Overwrites a little-endian UInt32 at `offset` (a length written after the fact).
    mutating func patch(_ v: UInt32, at offset: Int) {
        UnsafeMutableRawPointer(base + offset).storeBytes(of: v.littleEndian, as: UInt32.self)
    }

    /// Appends a double as MLflow's server writes it: NaN as `"NaN"`, ±∞ clamped to ±1.7976931348623157e308 (MLflow's
    /// SQL store cannot return infinity), integral values below 1e16 as `N.0`, shortest round-trip digits otherwise.
    mutating func double(_ v: Double) {
        if v.isNaN {
            raw("\"NaN\"")
        } else if v == .infinity {
            raw("1.7976931348623157e+308")
        } else if v == -.infinity {
            raw("-1.7976931348623157e+308")
        } else if abs(v) < 1e16, v == Double(Int64(v)) {
            if v == 0 && v.sign == .minus { raw("-") }
            int(Int64(v))
            raw(".0")
        } else if let memo {
            // A value met before in this answer is copied; a new one is formatted and remembered (direct-mapped).
            let slot = memo + Int(truncatingIfNeeded: (v.bitPattern &* 0x9E37_79B9_7F4A_7C15) >> (64 - Self.memoBits))
            let p = reserve(32)
            if slot.pointee.bits == v.bitPattern, slot.pointee.length > 0 {
                withUnsafeBytes(of: slot.pointee.text) { p.update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 24) }
                count &+= Int(slot.pointee.length)
            } else {
                let n = shortest(v, at: p)
                slot.pointee.bits = v.bitPattern
                slot.pointee.length = UInt8(n)
                withUnsafeMutableBytes(of: &slot.pointee.text) { $0.baseAddress!.copyMemory(from: p, byteCount: n) }
                count &+= n
            }
        } else {
            count &+= shortest(v, at: reserve(32))
        }
    }

    /// Writes `v`'s shortest round-trip digits, exactly `v.description` (at most 24 bytes), at `p`; returns the length.
    private func shortest(_ v: Double, at p: UnsafeMutablePointer<UInt8>) -> Int {
        var sink = DigitSink(at: p)
        v.write(to: &sink)
        return sink.count
    }

    /// Remembers the text of the doubles written from now on (a direct-mapped table of 4,096 values, 160 KB): for
    /// large answers whose values repeat — evaluation scores are fractions of a few hundred examples, and a group of
    /// one key has its key's values as means — formatting (most of their rendering time) becomes a copy.
    mutating func rememberDoubles() {
        guard memo == nil else { return }
        let m = UnsafeMutablePointer<MemoEntry>.allocate(capacity: 1 << Self.memoBits)
        m.initialize(repeating: MemoEntry(), count: 1 << Self.memoBits)
        memo = m
    }

    static let memoBits = 12

    /// One remembered double: its bits, the length of its text and the text (24 bytes at most).
    struct MemoEntry {
        var bits: UInt64 = 0
        var length: UInt8 = 0
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
    }
}

/// Receives a number's digits straight into the output. `Double.write(to:)` hands its formatted ASCII to
/// `_writeASCII` (the standard library's hook for exactly this), so nothing is allocated; `write(_:)` covers a
/// library that only calls that. At most 24 bytes (`-2.2250738585072014e-308`) arrive.
private struct DigitSink: TextOutputStream {
    let base: UnsafeMutablePointer<UInt8>
    var count = 0

    init(at base: UnsafeMutablePointer<UInt8>) { self.base = base }

    mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) {
        guard let src = buffer.baseAddress else { return }
        (base + count).update(from: src, count: buffer.count)
        count &+= buffer.count
    }

    mutating func write(_ string: String) {
        var string = string
        string.withUTF8 { _writeASCII($0) }
    }
}
