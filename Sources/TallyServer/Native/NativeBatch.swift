import TallyStore

/// A native columnar ingest request: whole series per key, and an optional batch id for idempotent retries.
struct NativeBatch: Sendable {
    /// The client's batch id (`nil`: none).
    var batchID: String?
    /// The series, in request order.
    var series: [SeriesBatch]
}

/// A native body that cannot be read: what was wrong and where (byte offset in the body, and the field).
struct NativeBodyError: Error, Sendable, CustomStringConvertible {
    /// What was wrong.
    let message: String
    /// Byte offset in the (decompressed) body.
    let offset: Int
    /// The field, as a path (`metrics[2].values[17]`), when known.
    let field: String?

    var description: String {
        (field.map { "\($0): " } ?? "") + message + " at byte \(offset)"
    }
}

/// Reads the JSON columnar body of `POST /api/tally/v1/runs/{run_id}/metrics`:
/// `{"batch_id": "…", "metrics": [{"key": "loss", "steps": […], "timestamps": […], "values": […]}]}`.
///
/// `values` take numbers and `NaN`/`Infinity`/`-Infinity` (bare or quoted); `steps` and `timestamps` take integers.
/// `timestamps` may be left out: the points then get `defaultTimestamp` (the server's clock). Unknown fields are
/// refused (a misspelt `timestamp` must not silently become "now"). Errors name the field and the byte offset.
struct ColumnarJSONParser {
    private var c: JSONCursor
    private let defaultTimestamp: Int64

    /// Parses a whole body.
    static func parse(_ bytes: UnsafeRawBufferPointer, defaultTimestamp: Int64) throws -> NativeBatch {
        var parser = ColumnarJSONParser(c: JSONCursor(bytes), defaultTimestamp: defaultTimestamp)
        return try parser.body()
    }

    private func fail(_ message: String, _ field: String?) -> NativeBodyError {
        NativeBodyError(message: message, offset: c.offset, field: field)
    }

    private mutating func expect(_ ch: UInt8, _ field: String?) throws {
        guard c.consume(ch) else { throw fail("expected '\(Character(Unicode.Scalar(ch)))'", field) }
    }

    private mutating func body() throws -> NativeBatch {
        var batch = NativeBatch(batchID: nil, series: [])
        var sawMetrics = false
        try expect(UInt8(ascii: "{"), nil)
        if !c.consume(UInt8(ascii: "}")) {
            repeat {
                guard let name = c.anyString() else { throw fail("expected a field name", nil) }
                try expect(UInt8(ascii: ":"), name)
                switch name {
                case "batch_id":
                    if c.peek() == UInt8(ascii: "n") {
                        guard c.literal("null") else { throw fail("expected a string or null", name) }
                    } else {
                        guard let v = c.anyString() else { throw fail("expected a string", name) }
                        batch.batchID = v
                    }
                case "metrics":
                    guard !sawMetrics else { throw fail("repeated field", name) }
                    sawMetrics = true
                    try expect(UInt8(ascii: "["), name)
                    if !c.consume(UInt8(ascii: "]")) {
                        repeat {
                            guard batch.series.count < NativeBinary.maxSeries else {
                                throw fail("more than \(NativeBinary.maxSeries) series in one request", name)
                            }
                            batch.series.append(try series("metrics[\(batch.series.count)]"))
                        } while c.consume(UInt8(ascii: ","))
                        try expect(UInt8(ascii: "]"), name)
                    }
                default:
                    throw fail("unknown field '\(name)' (expected batch_id, metrics)", nil)
                }
            } while c.consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"), nil)
        }
        guard c.atEnd() else { throw fail("unexpected data after the body", nil) }
        guard sawMetrics else { throw fail("missing field", "metrics") }
        return batch
    }

    private mutating func series(_ path: String) throws -> SeriesBatch {
        var key: String?
        var steps: [Int64]?, timestamps: [Int64]?, values: [Double]?
        try expect(UInt8(ascii: "{"), path)
        if !c.consume(UInt8(ascii: "}")) {
            repeat {
                guard let name = c.anyString() else { throw fail("expected a field name", path) }
                let field = path + "." + name
                try expect(UInt8(ascii: ":"), field)
                switch name {
                case "key":
                    guard key == nil, let v = c.anyString() else { throw fail(key == nil ? "expected a string" : "repeated field", field) }
                    key = v
                case "steps":
                    guard steps == nil else { throw fail("repeated field", field) }
                    steps = try ints(field)
                case "timestamps":
                    guard timestamps == nil else { throw fail("repeated field", field) }
                    timestamps = try ints(field)
                case "values":
                    guard values == nil else { throw fail("repeated field", field) }
                    values = try doubles(field)
                default:
                    throw fail("unknown field '\(name)' (expected key, steps, timestamps, values)", path)
                }
            } while c.consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"), path)
        }
        guard let key else { throw fail("missing field", path + ".key") }
        guard let steps else { throw fail("missing field", path + ".steps") }
        guard let values else { throw fail("missing field", path + ".values") }
        let ts = timestamps ?? [Int64](repeating: defaultTimestamp, count: steps.count)
        guard steps.count == values.count, ts.count == values.count else {
            throw fail("steps, timestamps and values must have the same length (got \(steps.count), \(ts.count) and \(values.count))", path)
        }
        return SeriesBatch(key: key, steps: steps, timestamps: ts, values: values)
    }

    private mutating func ints(_ field: String) throws -> [Int64] {
        try expect(UInt8(ascii: "["), field)
        var out: [Int64] = []
        if c.consume(UInt8(ascii: "]")) { return out }
        out.reserveCapacity(1024)
        repeat {
            guard let v = c.int64() else { throw fail("expected an integer (int64)", "\(field)[\(out.count)]") }
            out.append(v)
        } while c.consume(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"), field)
        return out
    }

    private mutating func doubles(_ field: String) throws -> [Double] {
        try expect(UInt8(ascii: "["), field)
        var out: [Double] = []
        if c.consume(UInt8(ascii: "]")) { return out }
        out.reserveCapacity(1024)
        repeat {
            guard let v = c.double() else { throw fail("expected a number, NaN, Infinity or -Infinity", "\(field)[\(out.count)]") }
            out.append(v)
        } while c.consume(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"), field)
        return out
    }
}
