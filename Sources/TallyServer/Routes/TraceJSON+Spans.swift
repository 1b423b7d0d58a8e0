import Foundation
import TallyTracking

/// A trace's spans as MLflow's `traces/get` and `traces/batchGet` answer them: OpenTelemetry's `Span` message in
/// protobuf's JSON (snake_case names, ids in base64, 64-bit integers as numbers, default values left out), made from
/// MLflow's span dicts (the stored `content`, or a `traces.json`) as MLflow's `Span.to_otel_proto` makes it: each
/// attribute's JSON text read back and typed (`string_value`, `int_value`, `double_value`, `bool_value`,
/// `array_value`, `kvlist_value`; `null` as no value).
extension TraceJSON {
    /// `{"trace_info": …, "spans": […]}`.
    static func trace(_ info: TraceInfo, spans: [JSONValue]) -> String {
        var o = Obj()
        o.add("trace_info", raw: Self.info(info))
        o.add("spans", array: spans.compactMap(span))
        return o.json
    }

    /// One span dict as an OpenTelemetry `Span` (`nil` for something that is not a span dict).
    static func span(_ d: JSONValue) -> String? {
        guard case .object = d else { return nil }
        var o = Obj()
        o.add("trace_id", d["trace_id"]?.text)
        o.add("span_id", d["span_id"]?.text)
        if let parent = d["parent_span_id"]?.text, !parent.isEmpty { o.add("parent_span_id", parent) }
        if let name = d["name"]?.text, !name.isEmpty { o.add("name", name) }
        for key in ["start_time_unix_nano", "end_time_unix_nano"] {
            if case .number(let n)? = d[key], n != "0" { o.add(key, raw: n) }
        }
        if case .object(let attrs)? = d["attributes"] {
            o.add("attributes", array: JSONValue.object(attrs).pythonMembers.map { k, v in
                attribute(k, v.text.flatMap { try? JSONParser.parse(Array($0.utf8)) } ?? v)
            })
        }
        o.add("events", array: d["events"].items.compactMap { e in
            guard case .object = e else { return nil }
            var ev = Obj()
            if case .number(let n)? = e["time_unix_nano"], n != "0" { ev.add("time_unix_nano", raw: n) }
            if let name = e["name"]?.text, !name.isEmpty { ev.add("name", name) }
            ev.add("attributes", array: (e["attributes"] ?? .null).pythonMembers.map { attribute($0.0, $0.1) })
            return ev.json
        })
        o.add("links", array: d["links"].items.compactMap(link))
        var status = Obj()
        if case .object = d["status"] ?? .null {
            if let m = d["status"]?["message"]?.text, !m.isEmpty { status.add("message", m) }
            if let c = d["status"]?["code"]?.text, c == "STATUS_CODE_OK" || c == "STATUS_CODE_ERROR" { status.add("code", c) }
        }
        o.add("status", raw: status.json)
        return o.json
    }

    /// A link: its MLflow trace id (`tr-<hex>`) and span id (hex) back to bytes; one whose ids are wider than
    /// OpenTelemetry's (16 and 8 bytes) is left out, as MLflow leaves it out.
    static func link(_ l: JSONValue) -> String? {
        guard let trace = l["trace_id"]?.text, let span = l["span_id"]?.text else { return nil }
        let traceHex = trace.hasPrefix("tr-") ? String(trace.dropFirst(3)) : trace
        guard let t = fixedHex(traceHex, 16), let s = fixedHex(span, 8) else { return nil }
        var o = Obj()
        o.add("trace_id", Data(t).base64EncodedString())
        o.add("span_id", Data(s).base64EncodedString())
        o.add("attributes", array: (l["attributes"] ?? .null).pythonMembers.map { attribute($0.0, $0.1) })
        return o.json
    }

    /// Hex digits as the big-endian integer they write, in `width` bytes (`nil`: not hex, or too wide).
    static func fixedHex(_ hex: String, _ width: Int) -> [UInt8]? {
        let digits = Array(hex.utf8.drop { $0 == UInt8(ascii: "0") })
        guard digits.count <= width * 2, !hex.isEmpty else { return nil }
        var bytes = [UInt8](repeating: 0, count: width)
        for (i, c) in digits.reversed().enumerated() {
            guard let v = PercentDecoding.hex(c) else { return nil }
            bytes[width - 1 - i / 2] |= i % 2 == 0 ? v : v << 4
        }
        return bytes
    }

    /// A `KeyValue` of a decoded value (no `value` for `null`).
    static func attribute(_ key: String, _ v: JSONValue) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        writeAttribute(key, v, &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// An `AnyValue` of a decoded value (`nil`: none, for `null`).
    static func anyValue(_ v: JSONValue) -> String? {
        if case .null = v { return nil }
        var out: [UInt8] = []
        writeAnyValue(v, &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Writes ``attribute(_:_:)``'s text: one buffer for a whole nested value (an object attribute is a tree of
    /// `kvlist_value`s), not a string per level.
    static func writeAttribute(_ key: String, _ v: JSONValue, _ out: inout [UInt8]) {
        out.append(contentsOf: #"{"key": "#.utf8)
        JSONText.write(key) { out.append(contentsOf: $0) }
        if case .null = v {} else {
            out.append(contentsOf: #", "value": "#.utf8)
            writeAnyValue(v, &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Writes ``anyValue(_:)``'s text (`{}` for `null`, as an array's item).
    static func writeAnyValue(_ v: JSONValue, _ out: inout [UInt8]) {
        switch v {
        case .null: out.append(contentsOf: "{}".utf8)
        case .bool(let b): out.append(contentsOf: (b ? #"{"bool_value": true}"# : #"{"bool_value": false}"#).utf8)
        case .string(let s):
            out.append(contentsOf: #"{"string_value": "#.utf8)
            JSONText.write(s) { out.append(contentsOf: $0) }
            out.append(UInt8(ascii: "}"))
        case .number(let n):
            if n.allSatisfy({ $0 == "-" || $0.isNumber }), Int64(n) != nil {
                out.append(contentsOf: #"{"int_value": "#.utf8)
                out.append(contentsOf: n.utf8)
                out.append(UInt8(ascii: "}"))
                return
            }
            switch JSONValue.pythonNumber(n) {
            case let special where special == "NaN" || special == "Infinity" || special == "-Infinity":
                out.append(contentsOf: (#"{"double_value": ""# + special + #""}"#).utf8)
            case let text: out.append(contentsOf: (#"{"double_value": "# + text + "}").utf8)
            }
        case .array(let items):
            out.append(contentsOf: #"{"array_value": {"#.utf8)
            if !items.isEmpty {
                out.append(contentsOf: #""values": ["#.utf8)
                for (i, item) in items.enumerated() {
                    if i > 0 { out.append(contentsOf: ", ".utf8) }
                    writeAnyValue(item, &out)
                }
                out.append(UInt8(ascii: "]"))
            }
            out.append(contentsOf: "}}".utf8)
        case .object:
            let members = v.pythonMembers
            out.append(contentsOf: #"{"kvlist_value": {"#.utf8)
            if !members.isEmpty {
                out.append(contentsOf: #""values": ["#.utf8)
                for (i, (k, value)) in members.enumerated() {
                    if i > 0 { out.append(contentsOf: ", ".utf8) }
                    writeAttribute(k, value, &out)
                }
                out.append(UInt8(ascii: "]"))
            }
            out.append(contentsOf: "}}".utf8)
        }
    }
}
