import Testing
import TallyWorkloads
@testable import TallyStore

#if canImport(Glibc)
import Glibc
#endif

/// 1e-310, a subnormal double (written as its bits: the literal draws a compiler warning for its lost precision).
private let subnormal = Double(bitPattern: 0x12688b70e62b)

/// Value columns predicted from another column of the same rows (float transform 5, segment format 5): bit-exact on
/// adversarial inputs under any model, chosen where a series is derived from another (an EMA, a scaled copy) and
/// never where it is not, and read back through every path of a store: seal, compaction, check, damage.
@Suite struct PredictedColumnTests {
    /// Writes `y` predicted from `x` with `p` (as float32 words when `narrow`), decodes it with `x` as the base.
    func roundTrip(_ y: [Double], from x: [Double], _ p: FloatColumnCodec.Prediction, narrow: Bool) throws -> [UInt64] {
        let planes = PlaneCodec()
        var w = ByteWriter()
        let base = FloatColumnCodec.PredictionBase(ref: ChunkRef(offset: 16, length: 100), values: bits(x))
        try bits(y).withUnsafeBufferPointer {
            try FloatColumnCodec.encodePredicted($0, narrow: narrow, base: base, prediction: p, compression: .default, planes: planes, into: &w)
        }
        #expect(try FloatColumnCodec.predictionBase(of: w.bytes, at: 0) == base.ref)
        var r = ByteReader(w.bytes)
        var out = bits(x)
        try out.withUnsafeMutableBufferPointer { try FloatColumnCodec.decodePredicted(&r, expectedCount: y.count, planes: planes, base: $0) }
        #expect(r.remaining == 0)
        return out
    }

    /// A float32 loss with minibatch noise and its float32 EMA, as a training loop computes them.
    static func lossAndEMA(_ n: Int, seed: UInt64 = 3) -> (loss: [Double], ema: [Double]) {
        let run = SyntheticRun(rows: n, seed: seed)
        return (run.values["train_loss"]!, run.values["ema_loss"]!)
    }

    @Test func everyModelRoundTripsOnAdversarialInputs() throws {
        var rng = SplitMix64(seed: 41)
        let models: [FloatColumnCodec.Prediction] = [
            .init(a: 0, b: 1, c: 0), .init(a: Double(Float(0.98)), b: Double(Float(0.02)), c: 0), .init(a: 0, b: 50, c: -49),
            .init(a: 1e300, b: -1e300, c: 7), .init(a: subnormal, b: -2.5, c: .leastNonzeroMagnitude), .init(a: -1, b: 0, c: 0),
            .init(a: 0, b: 0, c: 0), .init(a: 0.5, b: .greatestFiniteMagnitude, c: -.greatestFiniteMagnitude),
        ]
        var checked = 0
        for y in FloatTransformTests.adversarialCases() {
            let n = y.count
            let bases: [[Double]] = [y, y.reversed(), (0..<n).map { _ in rng.anyDouble() }, Array(repeating: .nan, count: n),
                                     (0..<n).map { _ in specialValues[Int(rng.next() % UInt64(specialValues.count))] }]
            let narrow = n > 0 && bits(y).withUnsafeBufferPointer { FloatColumnCodec.allFloat32($0) }
            for x in bases {
                var tried = models
                if n >= 64, let fitted = bits(y).withUnsafeBufferPointer({ yb in
                    bits(x).withUnsafeBufferPointer { FloatColumnCodec.fit(yb, $0, count: n, .init(a: true, b: true, c: true)) }
                }) { tried.append(fitted) }
                for p in tried {
                    for width in narrow ? [true, false] : [false] {
                        #expect(try roundTrip(y, from: x, p, narrow: width) == bits(y), "n \(n) model \(p) narrow \(width)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 800)
    }

    /// A fixed model and data, raw planes: the chunk's exact bytes. A processor or compiler that computes a
    /// prediction differently (fused multiply-add, the sign of an overflow's NaN, rounding) fails here instead of
    /// misreading files written elsewhere.
    @Test func aPredictedChunkHasTheSameBytesOnEveryMachine() throws {
        let x: [Double] = [1.5, .greatestFiniteMagnitude, .greatestFiniteMagnitude, -0.0, 3.25, .nan, subnormal, 0.1, 7, -2]
        let wide: [Double] = [0.25, 1, -0.0, 2.5, .infinity, 4, 0.1, 1e300, 3, 9]
        let narrow = wide.map { Double(Float($0)) }
        var hex: [String] = []
        for (y, p, isNarrow) in [(wide, FloatColumnCodec.Prediction(a: 0.5, b: 50, c: -49), false),
                                 (narrow, FloatColumnCodec.Prediction(a: 0, b: 50, c: -49), true)] {
            var w = ByteWriter()
            let base = FloatColumnCodec.PredictionBase(ref: ChunkRef(offset: 16, length: 100), values: bits(x))
            try bits(y).withUnsafeBufferPointer {
                try FloatColumnCodec.encodePredicted($0, narrow: isNarrow, base: base, prediction: p, compression: .none, planes: PlaneCodec(), into: &w)
            }
            hex.append(w.bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
            #expect(try roundTrip(y, from: x, p, narrow: isNarrow) == bits(y))
        }
        #expect(hex == Self.golden)
    }

    static let golden = [
        "020508000a000000100000000000000064000000000000000000e03f000000000000494000000000008048c0000a000000ff00ff00000034d2"
            + "3700000a000000ff00ff0000003384eb00000a000000ff00ff000000339a0000000a000000ff00ff00000033a91000000a000000ff00ff00"
            + "000033127900000a0000007f00ff0010003362c8d0000a00000005e0ff08172073473f4c000a000000017fff807f807f7c7cff",
        "020504000a0000001000000000000000640000000000000000000000000000000000494000000000008048c0000a000000ff00ff0000009a00"
            + "9900000a000000ff00ff00000099001900000a0000002b00ff40bb0099c0d965000a000000087fff8078817b7d06fa",
    ]

    @Test func derivedSeriesArePredictedInAFractionOfTheirBytes() throws {
        let (loss, ema) = Self.lossAndEMA(20_000)
        let percent = loss.map { Double(Float($0) * 100) }  // a scaled copy, rounded as float32
        // An exact copy under another name (a learning rate logged per parameter group) costs next to nothing.
        for (y, x, most) in [(ema, loss, 0.25), (loss, ema, 0.5), (percent, loss, 0.5), (loss, loss, 0.02)] {
            let base = FloatColumnCodec.PredictionBase(ref: ChunkRef(offset: 16, length: 100), values: bits(x))
            let planes = PlaneCodec()
            var plain = ByteWriter(), predicted = ByteWriter()
            try bits(y).withUnsafeBufferPointer { yb in
                try FloatColumnCodec.encode(yb, compression: .default, planes: planes, into: &plain, segment: true)
                #expect(try FloatColumnCodec.encode(yb, compression: .default, planes: planes, into: &predicted, segment: true, base: base)
                    == FloatColumnCodec.predictedTransform)
            }
            #expect(Double(predicted.count) < Double(plain.count) * most, "\(predicted.count) predicted vs \(plain.count) plain bytes")
            var r = ByteReader(predicted.bytes)
            var out = bits(x)
            try out.withUnsafeMutableBufferPointer { try FloatColumnCodec.decodePredicted(&r, expectedCount: y.count, planes: planes, base: $0) }
            #expect(out == bits(y))
        }
    }

    @Test func unrelatedColumnsCostNothing() throws {
        var rng = SplitMix64(seed: 8)
        let (loss, ema) = Self.lossAndEMA(20_000)
        let noise = (0..<20_000).map { _ in Double(Float(1 + rng.unit())) }
        let wide = (0..<20_000).map { _ in rng.unit() * 3 }
        let steady = Array(repeating: 0.25, count: 20_000)
        // A warm-up + cosine schedule in float32: smooth, so zstd finds more in its plain layout than an order-0
        // estimate credits; a prediction from another column must not be written unless it is smaller in fact.
        let schedule = (0..<20_000).map { i in Double(Float(i < 2_000 ? 0.1 * Double(i) / 2_000 : 0.05 * (1 + cos(Double.pi * Double(i) / 20_000)))) }
        let accuracy = (0..<20_000).map { _ in Double(Float(Int(rng.next() % 33)) / 32) }
        for y in [noise, wide, steady, loss, schedule] {
            for x in [noise.reversed(), wide, steady, accuracy, schedule.reversed(), (0..<20_000).map { _ in rng.anyDouble() }] where x != y {
                let base = FloatColumnCodec.PredictionBase(ref: ChunkRef(offset: 16, length: 100), values: bits(x))
                var plain = ByteWriter(), offered = ByteWriter()
                let t = try bits(y).withUnsafeBufferPointer { yb in
                    try FloatColumnCodec.encode(yb, compression: .default, planes: PlaneCodec(), into: &plain, segment: true)
                    return try FloatColumnCodec.encode(yb, compression: .default, planes: PlaneCodec(), into: &offered, segment: true, base: base)
                }
                if t == FloatColumnCodec.predictedTransform {
                    #expect(Double(offered.count) < Double(plain.count) * FloatColumnCodec.predictionMargin)
                } else {
                    #expect(offered.bytes == plain.bytes)
                }
            }
        }
        // Offered the right base among unrelated ones, the chooser finds it.
        let probes = [wide, ema, noise].enumerated().map {
            FloatColumnCodec.PredictionProbe(ref: ChunkRef(offset: Int64(16 + $0.offset * 100), length: 100), count: 20_000,
                                             head: Array(bits($0.element).prefix(FloatColumnCodec.predictionProbe)))
        }
        #expect(bits(loss).withUnsafeBufferPointer { FloatColumnCodec.bestBase(for: $0, among: probes) }?.ref.offset == 116)
        #expect(bits(noise).withUnsafeBufferPointer { FloatColumnCodec.bestBase(for: $0, among: Array(probes.prefix(2))) } == nil)
    }

    /// The value chunks of a run's segments that are predicted, and all value chunks.
    func predictedChunks(_ runDir: String) throws -> (predicted: Int, all: Int) {
        var predicted = 0, all = 0
        for name in try FileIO.list(runDir) where name.hasSuffix(".seg") {
            let seg = try SegmentReader(path: runDir + "/" + name, seq: 0)
            for si in 0..<seg.series.count {
                for b in seg.series.blocks(si) {
                    all += 1
                    if try FloatColumnCodec.predictionBase(of: seg.readChunk(b.values, what: "test"), at: b.values.offset) != nil { predicted += 1 }
                }
            }
        }
        return (predicted, all)
    }

    @Test func aStoreSealsCompactsAndChecksPredictedBlocks() throws {
        let dir = TempDir("predicted")
        let run = SyntheticRun(rows: 6_000, seed: 5)
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 1_000, rollup: 16))
        for half in [0..<3_000, 3_000..<6_000] {
            try store.append(run: "r", series: SyntheticRun.keys.map { k in
                SeriesBatch(key: k, steps: Array(run.steps[half]), timestamps: Array(run.timestamps[half]), values: Array(run.values[k]![half]))
            })
            try store.flush(run: "r")
        }
        let sealed = try predictedChunks(dir.path + "/runs/r")
        #expect(sealed.predicted >= 6 && sealed.predicted * 4 < sealed.all, "\(sealed)")
        func expectAll(_ s: MetricStore, _ when: String) throws {
            let back = try s.read(run: "r", keys: SyntheticRun.keys)
            for k in SyntheticRun.keys { #expect(back[k].map { bits($0.values) } == bits(run.values[k]!), "\(k) \(when)") }
            let m4 = try s.downsample(run: "r", key: "train_loss", steps: 0...5_999, buckets: 10)
            #expect(m4.map(\.summary.count).reduce(0, +) == 6_000)
        }
        try expectAll(store, "sealed")
        #expect(try store.compact(run: "r") == 2)
        let compacted = try predictedChunks(dir.path + "/runs/r")
        #expect(compacted.predicted >= 6, "\(compacted)")
        try expectAll(store, "compacted")
        try store.close()
        #expect(try StoreCheck.check(directory: dir.path).problems.isEmpty)
        try expectAll(try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 1_000, rollup: 16)), "reopened")
    }

    @Test func aBaseThatIsNotAnEarlierPlainChunkIsCorruption() throws {
        let dir = TempDir("predicted-bad")
        let run = SyntheticRun(rows: 2_000, seed: 6)
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 1_000, rollup: 16))
        try store.append(run: "r", series: ["ema_loss", "train_loss"].map { k in
            SeriesBatch(key: k, steps: run.steps, timestamps: run.timestamps, values: run.values[k]!)
        })
        try store.close()
        let runDir = dir.path + "/runs/r"
        let path = runDir + "/" + (try #require(try FileIO.list(runDir).first { $0.hasSuffix(".seg") }))
        let seg = try SegmentReader(path: path, seq: 0)
        let refs = (0..<seg.series.count).flatMap { seg.series.blocks($0).map(\.values) }
        let predicted = try refs.filter { try FloatColumnCodec.predictionBase(of: seg.readChunk($0, what: "test"), at: $0.offset) != nil }
        #expect(predicted.count >= 2)
        let (first, second) = (try #require(predicted.first), try #require(predicted.dropFirst().first))
        let later = try #require(refs.filter { $0.offset > first.offset }.first)
        let good = try CorruptionTests().readFile(path)
        // A base on the chunk itself, on a later chunk, on a predicted chunk: each is refused, naming file and offset.
        for (target, bad, what) in [(first, first, "not a chunk before it"), (first, later, "not a chunk before it"), (second, first, "predicted too")] {
            var bytes = good
            let at = Int(target.offset) + 8
            withUnsafeBytes(of: UInt64(bad.offset).littleEndian) { for k in 0..<8 { bytes[at + k] = $0[k] } }
            withUnsafeBytes(of: UInt32(bad.length).littleEndian) { for k in 0..<4 { bytes[at + 8 + k] = $0[k] } }
            let body = Int(target.offset)..<(Int(target.offset) + target.length - 4)
            let crc = CRC32C.checksum(Array(bytes[body])).littleEndian
            withUnsafeBytes(of: crc) { for k in 0..<4 { bytes[body.upperBound + k] = $0[k] } }
            try FileIO.writeAtomically(path: path, bytes: bytes, durable: false)
            let damaged = try SegmentReader(path: path, seq: 0)
            #expect {
                _ = try damaged.readValues(target, count: 1_000, planes: PlaneCodec())
            } throws: { e in
                guard let e = e as? StorageError else { return false }
                return e.code == .corrupt && e.path == path && e.offset == target.offset + 8 && e.message.contains(what)
            }
        }
    }

    /// Damaged predicted chunks (past their checksum: the decoder fed directly) throw or decode, never trap.
    @Test func mangledPredictedChunksThrowInsteadOfCrashing() throws {
        let (loss, ema) = Self.lossAndEMA(2_000)
        var rng = SplitMix64(seed: 77)
        let planes = PlaneCodec()
        for (p, narrow) in [(FloatColumnCodec.Prediction(a: 0, b: 50, c: -49), true), (FloatColumnCodec.Prediction(a: 0.5, b: 1, c: -0.25), false)] {
            var w = ByteWriter()
            let base = FloatColumnCodec.PredictionBase(ref: ChunkRef(offset: 16, length: 100), values: bits(ema))
            try bits(loss).withUnsafeBufferPointer {
                try FloatColumnCodec.encodePredicted($0, narrow: narrow, base: base, prediction: p, compression: .default, planes: planes, into: &w)
            }
            var errors = 0
            for trial in 0..<400 {
                var bytes = w.bytes
                for _ in 0..<(1 + trial % 4) { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                if trial % 5 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
                var r = ByteReader(bytes)
                var out = bits(ema)
                do {
                    _ = try FloatColumnCodec.predictionBase(of: bytes, at: 0)
                    try out.withUnsafeMutableBufferPointer { try FloatColumnCodec.decodePredicted(&r, expectedCount: loss.count, planes: planes, base: $0) }
                } catch is StorageError {
                    errors += 1
                }
            }
            #expect(errors > 100)
        }
    }

    /// Flipped bits anywhere in a segment holding predicted blocks are reported (file and offset) or harmless.
    @Test func flippedBitsInAPredictedSegmentAreDetected() throws {
        let dir = TempDir("predicted-flip")
        let run = SyntheticRun(rows: 1_500, seed: 9)
        let config = testConfig(blockPoints: 500, rollup: 16)
        let store = try MetricStore(directory: dir.path, configuration: config)
        try store.append(run: "r", series: ["ema_loss", "train_loss"].map { k in
            SeriesBatch(key: k, steps: run.steps, timestamps: run.timestamps, values: run.values[k]!)
        })
        try store.close()
        let runDir = dir.path + "/runs/r"
        #expect(try predictedChunks(runDir).predicted == 3)
        let path = runDir + "/" + (try #require(try FileIO.list(runDir).first { $0.hasSuffix(".seg") }))
        let good = try CorruptionTests().readFile(path)
        var rng = SplitMix64(seed: 10)
        var detected = 0
        for _ in 0..<120 {
            var bad = good
            let at = Int(rng.next() % UInt64(good.count))
            bad[at] ^= UInt8(1 << (rng.next() % 8))
            try FileIO.writeAtomically(path: path, bytes: bad, durable: false)
            do {
                let reopened = try MetricStore(directory: dir.path, configuration: config)
                let back = try reopened.read(run: "r", keys: ["ema_loss", "train_loss"])
                for key in ["ema_loss", "train_loss"] { _ = try reopened.downsample(run: "r", key: key, steps: 0...1_499, buckets: 7) }
                #expect(back["train_loss"].map { bits($0.values) } == bits(run.values["train_loss"]!), "flip at \(at)")
                #expect(back["ema_loss"].map { bits($0.values) } == bits(run.values["ema_loss"]!), "flip at \(at)")
            } catch let e as StorageError {
                detected += 1
                #expect(e.path == path && e.offset != nil, "flip at \(at): \(e)")
            }
        }
        #expect(detected > 100)
    }
}
