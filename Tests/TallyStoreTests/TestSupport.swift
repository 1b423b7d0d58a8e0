import Testing
import TallyWorkloads
@testable import TallyStore

#if canImport(Glibc)
import Glibc
#endif

/// A fresh temporary directory, removed by `cleanup()`.
struct TempDir: ~Copyable {
    let path: String
    init(_ name: String = "t") {
        var template = Array("/tmp/tally-test-\(name)-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
    deinit { try? FileIO.removeTree(path) }
}

/// Adversarial doubles: NaN payloads, signalling NaN, ±Inf, ±0, subnormals, extremes.
let specialValues: [Double] = [
    .nan, -.nan, Double(bitPattern: 0x7FF0_0000_0000_0001), Double(bitPattern: 0x7FF8_0000_DEAD_BEEF),
    Double(bitPattern: 0xFFF4_0000_0000_0000), .infinity, -.infinity, 0.0, -0.0, .leastNonzeroMagnitude,
    -.leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1.0, 0.1, Double(Float(0.1)),
    Double(Float.nan), Double(Float.greatestFiniteMagnitude),
]

extension SplitMix64 {
    /// A random double mixing many regimes: float32-exact, arbitrary bits, specials.
    mutating func anyDouble() -> Double {
        switch next() % 6 {
        case 0: return specialValues[Int(next() % UInt64(specialValues.count))]
        case 1: return Double(bitPattern: next())
        case 2: return Double(Float(unit() * 10))
        default: return unit() * 100 - 50
        }
    }

    mutating func int(_ r: ClosedRange<Int64>) -> Int64 {
        let span = UInt64(bitPattern: r.upperBound &- r.lowerBound)
        if span == .max { return Int64(bitPattern: next()) }
        return r.lowerBound &+ Int64(bitPattern: next() % (span &+ 1))
    }
}

func bits(_ xs: [Double]) -> [UInt64] { xs.map(\.bitPattern) }

/// Encodes `xs` as one float column with `encode` and decodes it back (the whole column must be consumed); returns
/// the values' bits, the column's transform byte and its encoded size.
func floatColumnRoundTrip(_ xs: [Double], _ encode: (UnsafeBufferPointer<UInt64>, PlaneCodec, inout ByteWriter) throws -> Void) throws
    -> (out: [UInt64], transform: UInt8, bytes: Int) {
    let planes = PlaneCodec()
    var w = ByteWriter()
    try bits(xs).withUnsafeBufferPointer { try encode($0, planes, &w) }
    var r = ByteReader(w.bytes)
    let out = try [UInt64](unsafeUninitializedCapacity: xs.count) { buf, n in
        try FloatColumnCodec.decode(&r, expectedCount: xs.count, planes: planes, into: buf)
        n = xs.count
    }
    #expect(r.remaining == 0)
    return (out, w.bytes.count > 1 ? w.bytes[1] : 0, w.count)
}

/// Points in arrival order, with the oracle's ordering: stable sort by step.
func stableSorted(_ pts: [MetricPoint]) -> [MetricPoint] {
    pts.enumerated().sorted { a, b in a.element.step < b.element.step || (a.element.step == b.element.step && a.offset < b.offset) }
        .map(\.element)
}
