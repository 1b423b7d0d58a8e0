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
        var o = Obj()
        o.add("key", key)
        if let value = anyValue(v) { o.add("value", raw: value) }
        return o.json
    }

    /// An `AnyValue` of a decoded value (`nil`: none, for `null`).
    static func anyValue(_ v: JSONValue) -> String? {
        switch v {
        case .null: return nil
        case .bool(let b): return #"{"bool_value": "# + (b ? "true" : "false") + "}"
        case .string(let s): return #"{"string_value": "# + JSONText.quote(s) + "}"
        case .number(let n):
            if n.allSatisfy({ $0 == "-" || $0.isNumber }), Int64(n) != nil { return #"{"int_value": "# + n + "}" }
            switch JSONValue.pythonNumber(n) {
            case "NaN", "Infinity", "-Infinity": return #"{"double_value": ""# + JSONValue.pythonNumber(n) + #""}"#
            case let text: return #"{"double_value": "# + text + "}"
            }
        case .array(let items):
            let values = items.map { anyValue($0) ?? "{}" }
            return #"{"array_value": {"# + (values.isEmpty ? "" : #""values": ["# + values.joined(separator: ", ") + "]") + "}}"
        case .object:
            let values = v.pythonMembers.map { attribute($0.0, $0.1) }
            return #"{"kvlist_value": {"# + (values.isEmpty ? "" : #""values": ["# + values.joined(separator: ", ") + "]") + "}}"
        }
    }
}
