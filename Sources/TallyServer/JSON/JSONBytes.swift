#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import TallyTracking

/// A byte-level JSON writer for the large responses (metric histories): text goes straight into one growing raw
/// buffer, numbers formatted in place, the one writer of JSON numbers (`JSONWriter` uses it for small answers).
struct JSONBytes: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var count = 0
    private var capacity: Int

    /// An empty writer with room for `capacity` bytes.
    init(capacity: Int) {
        self.capacity = max(64, capacity)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// The output as a `ByteBuffer` (one copy).
    var buffer: ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: count)
        b.writeBytes(UnsafeRawBufferPointer(start: base, count: count))
        return b
    }

    /// Makes room for `n` more bytes and returns where they go.
    @inline(__always)
    private mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if count &+ n > capacity {
            let grown = max(capacity &* 2, count &+ n)
            let b = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
            b.update(from: base, count: count)
            base.deallocate()
            base = b
            capacity = grown
        }
        return base + count
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
            for c in u where c == 0x22 || c == 0x5C || c < 0x20 { return false }
            let p = reserve(u.count &+ 2)
            p[0] = 0x22
            if let src = u.baseAddress { (p + 1).update(from: src, count: u.count) }
            p[u.count &+ 1] = 0x22
            count &+= u.count &+ 2
            return true
        }
        if !plain { JSONText.write(s) { bytes($0) } }
    }

    /// "00", "01", … "99".
    private static let pairs: [UInt8] = {
        var out: [UInt8] = []
        for i in 0..<100 {
            out.append(UInt8(0x30 + i / 10))
            out.append(UInt8(0x30 + i % 10))
        }
        return out
    }()

    /// Appends a decimal integer.
    mutating func int(_ v: Int64) {
        let p = reserve(20)
        var m = v.magnitude
        var digits = 1
        var t = m
        while t >= 10 {
            t /= 10
            digits &+= 1
        }
        var k = digits &+ (v < 0 ? 1 : 0)
        if v < 0 { p[0] = UInt8(ascii: "-") }
        count &+= k
        Self.pairs.withUnsafeBufferPointer { pairs in
            while m >= 100 {
                let r = Int(m % 100)
                m /= 100
                k &-= 2
                p[k] = pairs[r &* 2]
                p[k &+ 1] = pairs[r &* 2 &+ 1]
            }
            if m >= 10 {
                k &-= 2
                p[k] = pairs[Int(m) &* 2]
                p[k &+ 1] = pairs[Int(m) &* 2 &+ 1]
            } else {
                p[k &- 1] = 0x30 &+ UInt8(m)
            }
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
        } else if v == v.rounded(), abs(v) < 1e16 {
            if v == 0 && v.sign == .minus { raw("-") }
            int(Int64(v))
            raw(".0")
        } else {
            // Shortest round-trip digits, exactly `v.description`, written in place (no String per number).
            var sink = DigitSink(at: reserve(32))
            v.write(to: &sink)
            count &+= sink.count
        }
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
