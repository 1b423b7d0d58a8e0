import TallyTracking

/// The fields of a `runs/log-batch` body.
struct LogBatchBody: Sendable {
    /// `run_id`, else `run_uuid`.
    var runID: String
    /// Metric points, grouped by key as read.
    var metrics: MetricBatch
    /// Params in request order.
    var params: [KeyValue]
    /// Tags in request order.
    var tags: [KeyValue]
}

/// A single-pass parser for the one hot MLflow request body, `runs/log-batch`, straight from the request bytes to
/// a ``MetricBatch``'s columns: no JSON tree, no number strings, no struct per point; a key's series is looked up
/// once per run of equal keys (a batch repeats a few keys many times).
///
/// It handles the bodies clients send: the known fields, plain ASCII strings without escapes, integer int64s and
/// numeric or `"NaN"`/`"Infinity"` doubles. Anything else (escapes, non-ASCII, unknown or repeated fields, wrong
/// types, missing fields, bad syntax) makes it answer `nil`, and the request goes through the general parser, which
/// either accepts it or produces MLflow's exact error. It never accepts a body the general path would refuse, and
/// yields the same values where both accept (a differential test checks this).
struct LogBatchParser {
    private var c: JSONCursor
    private var batch = MetricBatch()
    /// The bytes (offset, length) of the last key read and its series, so repeated keys skip the lookup.
    private var lastKey: (start: Int, count: Int, series: Int) = (0, -1, 0)

    /// The run id of a body whose first field is a plain, non-empty `run_id` string (what the MLflow client sends),
    /// else `nil`: the access check's look at a log-batch body the fast path will read — when it answers, the fast
    /// path reads the same run id.
    @Sendable static func leadingRunID(_ bytes: UnsafeRawBufferPointer) -> String? {
        var c = JSONCursor(bytes)
        guard c.consume(UInt8(ascii: "{")) else { return nil }
        c.skipSpace()
        guard c.string() == "run_id", c.consume(UInt8(ascii: ":")) else { return nil }
        c.skipSpace()
        guard let id = c.string(), !id.isEmpty else { return nil }
        return id
    }

    /// The body, or `nil` when it needs the general parser.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> LogBatchBody? {
        guard bytes.count > 0 else { return nil }
        var parser = LogBatchParser(c: JSONCursor(bytes))
        // A metric is at least ~50 bytes of JSON; a body never holds more than the batch limit.
        parser.batch = MetricBatch(expectedPoints: min(bytes.count / 50, Validation.maxMetricsPerBatch))
        return parser.body()
    }

    private mutating func body() -> LogBatchBody? {
        var runID: String?, runUUID: String?
        var metrics = false
        var params: [KeyValue]?, tags: [KeyValue]?
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
                    guard !metrics, metricArray() else { return nil }
                    metrics = true
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
        return LogBatchBody(runID: id, metrics: batch, params: params ?? [], tags: tags ?? [])
    }

    // MARK: Arrays

    private mutating func metricArray() -> Bool {
        guard c.consume(UInt8(ascii: "[")) else { return false }
        if c.consume(UInt8(ascii: "]")) { return true }
        repeat {
            guard metric() else { return false }
        } while c.consume(UInt8(ascii: ","))
        return c.consume(UInt8(ascii: "]"))
    }

    private mutating func metric() -> Bool {
        guard c.consume(UInt8(ascii: "{")) else { return false }
        var series: Int?, value: Double?, timestamp: Int64?, step: Int64?
        if !c.consume(UInt8(ascii: "}")) {
            repeat {
                guard let name = c.rawString(), c.consume(UInt8(ascii: ":")) else { return false }
                switch name {
                case (let s, 3) where c.matches(s, "key"):
                    guard series == nil, let v = key() else { return false }
                    series = v
                case (let s, 5) where c.matches(s, "value"):
                    guard value == nil, let v = c.double() else { return false }
                    value = v
                case (let s, 9) where c.matches(s, "timestamp"):
                    guard timestamp == nil, let v = c.int64() else { return false }
                    timestamp = v
                case (let s, 4) where c.matches(s, "step"):
                    guard step == nil, let v = c.int64() else { return false }
                    step = v
                default: return false
                }
            } while c.consume(UInt8(ascii: ","))
            guard c.consume(UInt8(ascii: "}")) else { return false }
        }
        guard let series, let value, let timestamp else { return false }
        batch.append(series, step: step ?? 0, timestamp: timestamp, value: value)
        return true
    }

    /// A metric key's series in the batch: the previous key's when the bytes repeat, else looked up (created).
    private mutating func key() -> Int? {
        guard let (start, count) = c.rawString() else { return nil }
        if count == lastKey.count, c.equalBytes(start, lastKey.start, count) { return lastKey.series }
        guard let key = c.text(start, count) else { return nil }
        let s = batch.series(for: key)
        lastKey = (start, count, s)
        return s
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
