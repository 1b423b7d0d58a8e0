import TallyTracking

/// The fields of a `runs/log-batch` body.
struct LogBatchBody: Sendable, Equatable {
    /// `run_id`, else `run_uuid`.
    var runID: String
    /// Metric points in request order.
    var metrics: [MetricInput]
    /// Params in request order.
    var params: [KeyValue]
    /// Tags in request order.
    var tags: [KeyValue]
}

/// A single-pass parser for the one hot MLflow request body, `runs/log-batch`, straight from the request bytes to
/// `MetricInput`s: no JSON tree, no number strings, metric keys interned (a batch repeats a few keys many times).
///
/// It handles the bodies clients send: the known fields, plain ASCII strings without escapes, integer int64s and
/// numeric or `"NaN"`/`"Infinity"` doubles. Anything else (escapes, non-ASCII, unknown or repeated fields, wrong
/// types, missing fields, bad syntax) makes it answer `nil`, and the request goes through the general parser, which
/// either accepts it or produces MLflow's exact error. It never accepts a body the general path would refuse, and
/// yields the same values where both accept (a differential test checks this).
struct LogBatchParser {
    private var c: JSONCursor

    /// The body, or `nil` when it needs the general parser.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> LogBatchBody? {
        guard bytes.count > 0 else { return nil }
        var parser = LogBatchParser(c: JSONCursor(bytes))
        return parser.body()
    }

    private mutating func body() -> LogBatchBody? {
        var runID: String?, runUUID: String?
        var metrics: [MetricInput]?, params: [KeyValue]?, tags: [KeyValue]?
        guard c.consume(UInt8(ascii: "{")) else { return nil }
        if !c.consume(UInt8(ascii: "}")) {
            repeat {
                guard let name = c.rawString(), c.consume(UInt8(ascii: ":")) else { return nil }
                switch name {
                case (let s, 6) where c.matches(s, "run_id"):
                    guard runID == nil, let v = c.string() else { return nil }
                    runID = v
                case (let s, 8) where c.matches(s, "run_uuid"):
                    guard runUUID == nil, let v = c.string() else { return nil }
                    runUUID = v
                case (let s, 7) where c.matches(s, "metrics"):
                    guard metrics == nil, let v = metricArray() else { return nil }
                    metrics = v
                case (let s, 6) where c.matches(s, "params"):
                    guard params == nil, let v = keyValueArray() else { return nil }
                    params = v
                case (let s, 4) where c.matches(s, "tags"):
                    guard tags == nil, let v = keyValueArray() else { return nil }
                    tags = v
                default: return nil
                }
            } while c.consume(UInt8(ascii: ","))
            guard c.consume(UInt8(ascii: "}")) else { return nil }
        }
        guard c.atEnd() else { return nil }
        let id = (runID?.isEmpty == false ? runID : nil) ?? (runUUID?.isEmpty == false ? runUUID : nil)
        guard let id else { return nil }
        return LogBatchBody(runID: id, metrics: metrics ?? [], params: params ?? [], tags: tags ?? [])
    }

    // MARK: Arrays

    private mutating func metricArray() -> [MetricInput]? {
        guard c.consume(UInt8(ascii: "[")) else { return nil }
        var out: [MetricInput] = []
        if c.consume(UInt8(ascii: "]")) { return out }
        out.reserveCapacity(min(1024, c.n / 48))
        repeat {
            guard let m = metric() else { return nil }
            out.append(m)
        } while c.consume(UInt8(ascii: ","))
        return c.consume(UInt8(ascii: "]")) ? out : nil
    }

    private mutating func metric() -> MetricInput? {
        guard c.consume(UInt8(ascii: "{")) else { return nil }
        var key: String?, value: Double?, timestamp: Int64?, step: Int64?
        if !c.consume(UInt8(ascii: "}")) {
            repeat {
                guard let name = c.rawString(), c.consume(UInt8(ascii: ":")) else { return nil }
                switch name {
                case (let s, 3) where c.matches(s, "key"):
                    guard key == nil, let v = c.internedString() else { return nil }
                    key = v
                case (let s, 5) where c.matches(s, "value"):
                    guard value == nil, let v = c.double() else { return nil }
                    value = v
                case (let s, 9) where c.matches(s, "timestamp"):
                    guard timestamp == nil, let v = c.int64() else { return nil }
                    timestamp = v
                case (let s, 4) where c.matches(s, "step"):
                    guard step == nil, let v = c.int64() else { return nil }
                    step = v
                default: return nil
                }
            } while c.consume(UInt8(ascii: ","))
            guard c.consume(UInt8(ascii: "}")) else { return nil }
        }
        guard let key, let value, let timestamp else { return nil }
        return MetricInput(key: key, value: value, timestamp: timestamp, step: step ?? 0)
    }

    private mutating func keyValueArray() -> [KeyValue]? {
        guard c.consume(UInt8(ascii: "[")) else { return nil }
        var out: [KeyValue] = []
        if c.consume(UInt8(ascii: "]")) { return out }
        repeat {
            guard c.consume(UInt8(ascii: "{")) else { return nil }
            var key: String?, value: String?
            if !c.consume(UInt8(ascii: "}")) {
                repeat {
                    guard let name = c.rawString(), c.consume(UInt8(ascii: ":")) else { return nil }
                    switch name {
                    case (let s, 3) where c.matches(s, "key"):
                        guard key == nil, let v = c.string() else { return nil }
                        key = v
                    case (let s, 5) where c.matches(s, "value"):
                        guard value == nil, let v = c.string() else { return nil }
                        value = v
                    default: return nil
                    }
                } while c.consume(UInt8(ascii: ","))
                guard c.consume(UInt8(ascii: "}")) else { return nil }
            }
            guard let key else { return nil }
            out.append(KeyValue(key: key, value: value ?? ""))
        } while c.consume(UInt8(ascii: ","))
        return c.consume(UInt8(ascii: "]")) ? out : nil
    }
}
