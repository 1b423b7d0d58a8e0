import NIOCore
import TallyWorkloads
import Testing
@testable import TallyServer
@testable import TallyTracking

/// The byte writer's fast paths against the general ones: strings scanned eight bytes at a time against
/// ``JSONText/quote(_:)``, integers against `String(_:)`, and growth of the response buffer it writes into.
@Suite struct JSONBytesTests {
    /// Every byte class (plain ASCII, `"`, `\`, control characters, multi-byte UTF-8, the bytes right around the
    /// SWAR thresholds) at every position of strings of 0…40 bytes.
    @Test func stringsMatchTheGeneralEscaper() {
        let pieces = ["a", "\"", "\\", "\u{0}", "\u{1F}", "\n", " ", "!", "#", "[", "]", "\u{7F}", "é", "€", "😀", "/", "\u{1}"]
        var rng = SplitMix64(seed: 3)
        for length in 0...40 {
            for _ in 0..<40 {
                var s = String(repeating: "k", count: length)
                // Plain strings of every length, then one or two special characters at random places.
                if rng.next() % 3 != 0 {
                    for _ in 0..<(1 + rng.next() % 2) {
                        var chars = Array(s)
                        let at = chars.isEmpty ? 0 : Int(rng.next() % UInt64(chars.count + 1))
                        chars.insert(contentsOf: pieces[Int(rng.next() % UInt64(pieces.count))], at: at)
                        s = String(chars)
                    }
                }
                var out = JSONBytes(capacity: 8)
                out.string(s)
                #expect(out.text == JSONText.quote(s), "\(Array(s.utf8))")
            }
        }
    }

    @Test func integersMatchTheirDescription() {
        var values: [Int64] = [0, 1, -1, 9, 10, 99, 100, .max, .min, .max - 1, .min + 1]
        var p: Int64 = 1
        for _ in 0..<18 {
            p *= 10
            values += [p - 1, p, p + 1, -p, -(p - 1)]
        }
        var rng = SplitMix64(seed: 5)
        for _ in 0..<10_000 { values.append(Int64(bitPattern: rng.next()) >> (rng.next() % 64)) }
        for v in values {
            var out = JSONBytes(capacity: 1)
            out.int(v)
            #expect(out.text == String(v))
        }
    }

    /// Remembered doubles are written exactly as formatted ones: repeated values, values colliding in the table,
    /// both zeros, integral values, subnormals and extremes.
    @Test func rememberedDoublesMatchFormattedOnes() {
        var rng = SplitMix64(seed: 9)
        var values: [Double] = [0, -0.0, 1, -1, 0.1, 1e16, 1e-300, .leastNonzeroMagnitude, .greatestFiniteMagnitude, .leastNormalMagnitude, 123.456]
        for _ in 0..<20_000 {
            switch rng.next() % 3 {
            case 0: values.append(Double(Float(Double(rng.next() % 301) / 300)))  // few distinct values, repeated
            case 1: values.append(Double(bitPattern: rng.next()))  // anything, NaN and infinities included
            default: values.append(values[Int(rng.next() % UInt64(values.count))])
            }
        }
        var plain = JSONBytes(capacity: 16), remembered = JSONBytes(capacity: 16)
        remembered.rememberDoubles()
        for v in values {
            plain.double(v)
            plain.raw(",")
            remembered.double(v)
            remembered.raw(",")
        }
        #expect(remembered.text == plain.text)
        #expect(plain.text.split(separator: ",").count == values.count)
    }

    /// Small pieces from a tiny initial capacity: every growth keeps what was written, and the buffer handed over
    /// holds exactly the text.
    @Test func growthKeepsEverythingWritten() {
        var out = JSONBytes(capacity: 1)
        var want = ""
        for i in 0..<50_000 {
            out.raw(", ")
            out.int(Int64(i) * 7919)
            out.string("key/\(i)")
            want += ", \(Int64(i) * 7919)\"key/\(i)\""
        }
        #expect(out.text == want)
        let b = out.buffer
        #expect(b.readableBytes == want.utf8.count && b.getString(at: b.readerIndex, length: b.readableBytes) == want)
    }
}
