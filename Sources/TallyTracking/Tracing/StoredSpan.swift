import Foundation

/// A span as MLflow keeps it in its tracking store (`spans`): the columns a search reads and `content`, the span as
/// MLflow's `Span.to_dict` writes it (`docs/otlp.md`), which readers are given back unchanged.
public struct StoredSpan: Sendable, Equatable {
    /// The trace's id (`tr-` and 32 hex digits).
    public var traceID: String
    /// The span's id (16 hex digits).
    public var spanID: String
    /// The parent's id (16 hex digits); `nil` for a root span.
    public var parentSpanID: String?
    /// The operation's name.
    public var name: String
    /// The span's type (`mlflow.spanType`: `LLM`, `CHAIN`, …), if it has one.
    public var type: String?
    /// `OK`, `ERROR` or `UNSET`.
    public var status: String
    /// When it started, in nanoseconds since the epoch.
    public var startTime: Int64
    /// When it ended, in nanoseconds since the epoch (0: not given).
    public var endTime: Int64
    /// The span as JSON text (Python's `json.dumps` of MLflow's span dict, non-ASCII characters as they are).
    public var content: String

    /// A stored span.
    public init(traceID: String, spanID: String, parentSpanID: String?, name: String, type: String?, status: String, startTime: Int64,
                endTime: Int64, content: String) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.type = type
        self.status = status
        self.startTime = startTime
        self.endTime = endTime
        self.content = content
    }
}

/// An OTLP span as MLflow's server converts it (`Span.from_otel_proto`, `to_dict`, `sanitize_attributes`): the row it
/// stores and the attributes its trace's info is derived from.
struct ConvertedSpan {
    /// The row.
    var stored: StoredSpan
    /// The span's attributes as stored (after MLflow's translation from other conventions).
    var attributes: SpanAttributes
    /// Whether MLflow's translation raised on this span (MLflow then refuses the export, after converting all of it).
    var translationFailed = false
    /// Whether it is a root span (no parent, or an all-zero one).
    var isRoot: Bool { stored.parentSpanID == nil }
    /// The stored text of an attribute (a string value).
    func attribute(_ key: String) -> String? { attributes.text(key) }
}

/// Why a span cannot be stored, in MLflow's two words for it: a span it cannot convert, or one it cannot log.
struct SpanConversionError: Error, Equatable {
    /// `false`: "Cannot convert OpenTelemetry span to MLflow span" (no trace or span id); `true`: "Failed to log
    /// OpenTelemetry spans" (an id wider than OpenTelemetry's, a time past a 64-bit integer).
    var failedToLog: Bool
}

extension ConvertedSpan {
    /// `mlflow.traceRequestId`, the attribute MLflow sets on every span it stores (a sender's value is replaced).
    static let requestIDKey = "mlflow.traceRequestId"
    /// The service names MLflow copies onto a trace's root span from its resource (its `_KNOWN_SERVICE_NAMES`).
    static let knownServiceNames: Set<String> = ["claude-code", "codex_cli_rs", "codex_vscode", "gemini-cli", "qwen-code"]

    /// Converts a span sent by `resource`, translating its attributes from other conventions and pricing it with
    /// `prices` (``SpanTranslation``).
    init(_ s: OTLPSpan, resource: [OTLPAttribute], prices: ModelPrices? = nil) throws {
        guard !s.traceID.isEmpty, !s.spanID.isEmpty else { throw SpanConversionError(failedToLog: false) }
        guard let trace = Self.fixed(s.traceID, 16), let span = Self.fixed(s.spanID, 8) else { throw SpanConversionError(failedToLog: true) }
        let parentBytes = s.parentSpanID.isEmpty ? nil : Self.fixed(s.parentSpanID, 8)
        if !s.parentSpanID.isEmpty, parentBytes == nil { throw SpanConversionError(failedToLog: true) }
        let parent = parentBytes.flatMap { $0.allSatisfy { $0 == 0 } ? nil : $0 }  // an all-zero parent is none
        guard let start = Int64(exactly: s.start), let end = Int64(exactly: s.end) else { throw SpanConversionError(failedToLog: true) }
        let traceID = "tr-" + Self.hex(trace)

        // In the order MLflow sets them: the span's own, the request id, a known service's name on a root span.
        var attributes = s.attributes.map { ($0.key, Self.dumped($0.value)) }
        attributes.append((Self.requestIDKey, JSONValue.string(traceID).pythonDumps(ascii: false)))
        if parent == nil, let service = resource.first(where: { $0.key == "service.name" }).flatMap({ Self.serviceName($0.value) }) {
            attributes.append(("service.name", JSONValue.string(service).pythonDumps(ascii: false)))
        }
        var tooLong = false  // an integer Python refuses to read (more than 4,300 digits) in a value sanitize_attributes reads
        let sanitized = pythonDict(attributes).map { ($0.0, Self.sanitized($0.1, tooLong: &tooLong)) }

        let code = s.statusCode == 1 ? "OK" : s.statusCode == 2 ? "ERROR" : "UNSET"
        let events: [JSONValue] = s.events.map { e in
            .object([("name", .string(e.name)), ("time_unix_nano", .number(String(e.time))),
                     ("attributes", .object(pythonDict(e.attributes.map { ($0.key, Self.raw($0.value, bytesAsBase64: false)) })))])
        }
        let links: [JSONValue] = s.links.map { l in
            let attrs = pythonDict(l.attributes.map { ($0.key, Self.raw($0.value, bytesAsBase64: true)) })
            return .object([("trace_id", .string("tr-" + Self.hex(Self.trimmed(l.traceID), digits: 32))),
                            ("span_id", .string(Self.hex(Self.trimmed(l.spanID), digits: 16))),
                            ("attributes", attrs.isEmpty ? .null : .object(attrs))])
        }
        var translated = SpanAttributes(stored: sanitized)
        do { try SpanTranslation.translate(&translated, events: events, prices: prices) } catch { translationFailed = true }
        if tooLong { translationFailed = true }
        let dict = JSONValue.object([
            ("trace_id", .string(Base64.encode(trace))), ("span_id", .string(Base64.encode(span))),
            ("parent_span_id", parent.map { .string(Base64.encode($0)) } ?? .null), ("name", .string(s.name)),
            ("start_time_unix_nano", .number(String(start))), ("end_time_unix_nano", .number(String(end))), ("events", .array(events)),
            ("status", .object([("code", .string("STATUS_CODE_" + code)), ("message", .string(code == "ERROR" ? s.statusMessage : ""))])),
            ("attributes", .object(translated.pairs)), ("links", .array(links)),
        ])
        let type = s.attributes.last { $0.key == "mlflow.spanType" }.map { a -> String in
            if case .string(let t) = a.value { return t }
            return Self.dumped(a.value)
        }
        self.stored = StoredSpan(traceID: traceID, spanID: Self.hex(span), parentSpanID: parent.map { Self.hex($0) }, name: s.name, type: type,
                                 status: code, startTime: start, endTime: end, content: dict.pythonDumps(ascii: false))
        self.attributes = translated
    }

    /// A service name MLflow propagates: one on its list (a value of another kind never is).
    static func serviceName(_ v: OTLPValue) -> String? {
        guard case .string(let s) = v, knownServiceNames.contains(s) else { return nil }
        return s
    }

    /// The big-endian integer an id's bytes are, in exactly `width` bytes; `nil` when it does not fit.
    static func fixed(_ bytes: [UInt8], _ width: Int) -> [UInt8]? {
        let t = trimmed(bytes)
        guard t.count <= width else { return nil }
        return Array(repeating: 0, count: width - t.count) + t
    }

    /// The bytes without leading zeros.
    static func trimmed(_ bytes: [UInt8]) -> [UInt8] { Array(bytes.drop { $0 == 0 }) }

    /// Lower-case hex, left-padded with zeros to `digits` (Python's `format(n, '032x')` of the bytes' integer).
    static func hex(_ bytes: [UInt8], digits: Int = 0) -> String {
        let all = Secrets.hex(bytes)
        guard digits > 0 else { return all }
        let significant = all.drop { $0 == "0" }
        return String(repeating: "0", count: max(0, digits - significant.count)) + significant
    }

    /// An attribute value as MLflow stores it on a span: `json.dumps` of the decoded value.
    static func dumped(_ v: OTLPValue) -> String { raw(v, bytesAsBase64: false).pythonDumps(ascii: false) }

    /// The Python value `_decode_otel_proto_anyvalue` makes of an `AnyValue`, as JSON: bytes as Python's `repr` (what
    /// MLflow's JSON encoder falls back to) or, in a link, as base64.
    static func raw(_ v: OTLPValue, bytesAsBase64: Bool) -> JSONValue {
        switch v {
        case .none: .null
        case .string(let s): .string(s)
        case .bool(let b): .bool(b)
        case .int(let i): .number(String(i))
        case .double(let d): .number(d.isNaN ? "NaN" : d.isInfinite ? (d > 0 ? "Infinity" : "-Infinity") : JSONValue.pythonNumber("\(d)"))
        case .bytes(let b): .string(bytesAsBase64 ? Base64.encode(b) : PythonRepr.bytes(b))
        case .array(let items): .array(items.map { raw($0, bytesAsBase64: bytesAsBase64) })
        case .map(let kvs): .object(pythonDict(kvs.map { ($0.key, raw($0.value, bytesAsBase64: bytesAsBase64)) }))
        }
    }

    /// `sanitize_attributes`: a value dumped twice (an OTLP string that is itself the JSON of a string, object or
    /// array) loses one layer; any other is kept.
    static func sanitized(_ dumped: String, tooLong: inout Bool) -> String {
        guard case .string(let inner)? = try? JSONParser.parse(Array(dumped.utf8)),
              let twice = try? JSONParser.parse(Array(inner.utf8)) else { return dumped }
        if twice.hasIntegerOver(pythonIntDigits) { tooLong = true }
        switch twice {
        case .string, .object, .array: return inner
        default: return dumped
        }
    }
}

/// The most digits Python's `int()` (and so `json.loads`) reads in an integer (`sys.get_int_max_str_digits()`).
let pythonIntDigits = 4300

extension JSONValue {
    /// Whether the value holds an integer literal of more than `digits` digits.
    func hasIntegerOver(_ digits: Int) -> Bool {
        switch self {
        case .number(let n): n.utf8.count > digits && !n.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
            && n.utf8.filter { $0 != UInt8(ascii: "-") }.count > digits
        case .array(let items): items.contains { $0.hasIntegerOver(digits) }
        case .object(let members): members.contains { $0.1.hasIntegerOver(digits) }
        default: false
        }
    }
}

/// Standard base64 with padding.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}

extension FilterClause {
    /// Whether a span kept here satisfies a `span.*` clause, as MLflow's SQL decides it: on the `name`, `type`
    /// (none: no comparison holds) and `status` columns; on the stored JSON for `content` (`LIKE`, `ILIKE`); and for
    /// `attributes.<key>` on the stored JSON too — `LIKE` and `ILIKE` as `%"<key>"<pattern>%`, `RLIKE` as
    /// `"<key>": "\"…` (MLflow's rewriting), `=` and `!=` against that `LIKE` text taken literally, `IN` never and
    /// `NOT IN` always (MLflow compares the JSON with the characters of that text).
    func matches(_ s: StoredSpan) -> Bool { matches(s, regex: spanRegex) }

    /// The regular expression an `RLIKE` attribute clause searches the stored JSON with (MLflow's rewriting), made
    /// once per clause; `nil` for other clauses.
    var spanRegex: Regex<AnyRegexOutput>? {
        guard key.hasPrefix("attributes."), comparator == "RLIKE", case .string(var v) = value else { return nil }
        let name = String(key.dropFirst("attributes.".count))
        let start = v.hasPrefix("^"), end = v.hasSuffix("$")
        if start { v.removeFirst() }
        if end, !v.isEmpty { v.removeLast() }
        return try? Regex("\"\(name)\": " + (start ? #""\\""# : #""\\".*"#) + v + (end ? #"\\""# : ""))
    }

    /// ``matches(_:)`` with the clause's regular expression made already.
    func matches(_ s: StoredSpan, regex: Regex<AnyRegexOutput>?) -> Bool {
        switch key {
        case "name": return test(s.name)
        case "type": return s.type.map { test($0) } ?? false
        case "status": return test(s.status)
        case "content": return test(s.content)
        default:
            let name = String(key.dropFirst("attributes.".count))
            switch (comparator, value) {
            case ("RLIKE", _):
                return regex.map { s.content.contains($0) } ?? false
            case (_, .string(let v)):
                var literal = self
                literal.value = .string("%\"\(name)\"\(v)%")
                return literal.test(s.content)
            case ("NOT IN", _): return true
            default: return false
            }
        }
    }
}

extension StoredSpan {
    /// A span of trace `traceID` from MLflow's span dict (a `traces.json` entry, or MLflow's stored `content`): its
    /// columns read from the dict, its content the dict as `json.dumps` writes it. `nil` for a dict without a span id.
    init?(traceID: String, dict d: JSONValue) {
        func id(_ key: String) -> String? {
            guard case .string(let b64)? = d[key], let bytes = Data(base64Encoded: b64), !bytes.isEmpty,
                  let fixed = ConvertedSpan.fixed(Array(bytes), 8) else { return nil }
            return ConvertedSpan.hex(fixed)
        }
        func int(_ key: String) -> Int64 {
            if case .number(let n)? = d[key] { return Int64(n) ?? 0 }
            return 0
        }
        guard let spanID = id("span_id") else { return nil }
        var type: String?
        if case .string(let raw)? = d["attributes"]?["mlflow.spanType"] { type = TrackingService.jsonString(raw) }
        var status = "UNSET"
        if case .string(let code)? = d["status"]?["code"] {
            status = code == "STATUS_CODE_OK" ? "OK" : code == "STATUS_CODE_ERROR" ? "ERROR" : "UNSET"
        }
        var name = ""
        if case .string(let n)? = d["name"] { name = n }
        self.init(traceID: traceID, spanID: spanID, parentSpanID: id("parent_span_id"), name: name, type: type, status: status,
                  startTime: int("start_time_unix_nano"), endTime: int("end_time_unix_nano"), content: d.pythonDumps(ascii: false))
    }
}
