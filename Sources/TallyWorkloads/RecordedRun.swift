import Foundation

/// A training run's metrics as recorded by `scripts/gen-training-curves.py` (a small MLP trained with numpy):
/// the realistic workload beside ``SyntheticRun``, with minibatch noise, quantised accuracies, a float64 schedule
/// cast to float32 and float64 timings.
///
/// File layout (little-endian): magic `TCURVES1`, `u32` series count, then per series: `u16` name length, the name,
/// `u8` width of the logged value (4 or 8), `u64` count, then `i64` steps, `i64` timestamps and `f64` values.
public struct RecordedRun: Sendable {
    /// One recorded metric.
    public struct Series: Sendable {
        /// The metric key.
        public var key: String
        /// 4 when the training loop logged float32 values, 8 for float64.
        public var width: Int
        /// Steps, one per point.
        public var steps: [Int64]
        /// Timestamps (Unix ms), one per point.
        public var timestamps: [Int64]
        /// Values as logged (doubles).
        public var values: [Double]
    }

    /// The series in file order.
    public var series: [Series]

    /// Points in all series.
    public var points: Int { series.reduce(0) { $0 + $1.steps.count } }

    /// What went wrong reading a file.
    public struct FormatError: Error, CustomStringConvertible {
        /// The problem, with the byte offset.
        public var description: String
    }

    /// Reads a file written by the generator.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw FormatError(description: "\(path): cannot be read") }
        let bytes = [UInt8](data)
        var at = 0
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, at + n <= bytes.count else { throw FormatError(description: "\(path): truncated at byte \(at)") }
            defer { at += n }
            return bytes[at..<(at + n)]
        }
        func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
            try take(MemoryLayout<T>.size).reversed().reduce(T(0)) { $0 << 8 | T($1) }
        }
        func column<T>(_: T.Type, _ n: Int) throws -> [T] {
            let raw = try take(n * 8)
            return [T](unsafeUninitializedCapacity: n) { buf, c in
                raw.withUnsafeBytes { UnsafeMutableRawBufferPointer(buf).copyMemory(from: $0) }
                c = n
            }
        }
        guard Array(try take(8)) == Array("TCURVES1".utf8) else { throw FormatError(description: "\(path): not a TCURVES1 file") }
        let count = Int(try int(UInt32.self))
        var series: [Series] = []
        for _ in 0..<count {
            let name = String(decoding: try take(Int(try int(UInt16.self))), as: UTF8.self)
            let width = Int(try int(UInt8.self))
            let n = Int(try int(UInt64.self))
            guard width == 4 || width == 8, n <= bytes.count / 24 else { throw FormatError(description: "\(path): bad header of \(name) at byte \(at)") }
            series.append(Series(key: name, width: width, steps: try column(Int64.self, n), timestamps: try column(Int64.self, n),
                                 values: try column(Double.self, n)))
        }
        self.series = series
    }
}
