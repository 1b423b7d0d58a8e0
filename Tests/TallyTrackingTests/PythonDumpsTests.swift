import Testing
import TallyWorkloads
@testable import TallyTracking

/// `JSONValue.pythonDumps`, the byte writer behind MLflow's JSON-in-strings (dataset records, scorer listings),
/// against a plain reference written character by character (the writer before it wrote bytes), over random values:
/// keys repeated and canonically equivalent, every escape, text beyond the BMP, numbers Python writes back otherwise.
@Suite struct PythonDumpsTests {
    /// The reference: `json.dumps` built from Swift strings, each key compared by its code points.
    static func reference(_ v: JSONValue, sortKeys: Bool) -> String {
        func quote(_ s: String) -> String {
            var out = "\""
            for u in s.utf16 {
                switch u {
                case 0x22: out += "\\\""
                case 0x5C: out += "\\\\"
                case 0x0A: out += "\\n"
                case 0x0D: out += "\\r"
                case 0x09: out += "\\t"
                case 0x08: out += "\\b"
                case 0x0C: out += "\\f"
                case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(u)))
                default:
                    let hex = String(u, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            }
            return out + "\""
        }
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return JSONValue.pythonNumber(n)
        case .string(let s): return quote(s)
        case .array(let items): return "[" + items.map { reference($0, sortKeys: sortKeys) }.joined(separator: ", ") + "]"
        case .object(let members):
            var kept: [(String, JSONValue)] = []
            for (k, x) in members {
                if let i = kept.firstIndex(where: { Array($0.0.unicodeScalars) == Array(k.unicodeScalars) }) { kept[i].1 = x } else { kept.append((k, x)) }
            }
            if sortKeys { kept.sort { $0.0.unicodeScalars.map(\.value).lexicographicallyPrecedes($1.0.unicodeScalars.map(\.value)) } }
            return "{" + kept.map { quote($0.0) + ": " + reference($0.1, sortKeys: sortKeys) }.joined(separator: ", ") + "}"
        }
    }

    static let pieces = ["a", "b", "é", "e\u{301}", "\"", "\\", "\n", "\t", "\u{8}", "\u{c}", "\u{1}", "\u{7f}", "😀", "\u{2028}", " ", "key", "Z"]
    static let numbers = ["0", "-0", "1", "-12", "2.50", "1e3", "1E-7", "0.1", "-0.0", "123456789012345678901234567890", "NaN", "Infinity"]

    static func random(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
        func text(_ rng: inout SplitMix64) -> String { (0..<Int(rng.next() % 4)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined() }
        switch rng.next() % (depth > 3 ? 4 : 6) {
        case 0: return rng.next() % 2 == 0 ? .null : .bool(rng.next() % 2 == 0)
        case 1: return .number(numbers[Int(rng.next() % UInt64(numbers.count))])
        case 2, 3: return .string(text(&rng))
        case 4: return .array((0..<Int(rng.next() % 4)).map { _ in random(&rng, depth: depth + 1) })
        default:  // up to 24 members: both the scan and the hashed path, keys often repeated
            return .object((0..<Int(rng.next() % 25)).map { _ in (text(&rng), random(&rng, depth: depth + 1)) })
        }
    }

    @Test func writesWhatTheReferenceWrites() {
        var rng = SplitMix64(seed: 54)
        for _ in 0..<3000 {
            let v = Self.random(&rng, depth: 0)
            #expect(v.pythonDumps() == Self.reference(v, sortKeys: false))
            #expect(v.pythonDumps(sortKeys: true) == Self.reference(v, sortKeys: true))
        }
        // Many members with repeats (the hashed path), a key given twice: its first place, its last value.
        let many = JSONValue.object((0..<40).map { ("k\($0 % 30)", .number(String($0))) })
        #expect(many.pythonDumps() == Self.reference(many, sortKeys: false) && many.pythonMembers.count == 30)
        #expect(many.pythonMembers[0].1 == .number("30"))
    }
}
