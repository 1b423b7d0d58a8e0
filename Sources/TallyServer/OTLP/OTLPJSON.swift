import Foundation
import TallyTracking

/// OTLP/HTTP's JSON body (`application/json`): the same `ExportTraceServiceRequest` in protobuf's JSON mapping, as
/// the OTLP specification writes it — field names in lowerCamelCase (protobuf's own snake_case names read too),
/// trace and span ids as hex (links' too), 64-bit integers as strings or numbers, enums as numbers or names, bytes
/// as base64. Unknown fields are skipped; a known field of the wrong type is refused (``OTLPProtobuf/Malformed``).
enum OTLPJSON {
    typealias Malformed = OTLPProtobuf.Malformed

    /// The resource spans of a request.
    static func exportRequest(_ body: [UInt8]) throws -> [OTLPResourceSpans] {
        let root: JSONValue
        do { root = try JSONParser.parse(body) } catch { throw Malformed(reason: "not JSON") }
        guard case .object = root else { throw Malformed(reason: "not a JSON object") }
        return try list(root, "resourceSpans", "resource_spans").map { rs in
            guard case .object = rs else { throw Malformed(reason: "resourceSpans holding something else than objects") }
            var out = OTLPResourceSpans()
            if let resource = try object(rs, "resource", "resource") {
                out.resource = try list(resource, "attributes", "attributes").map(attribute)
            }
            for scope in try list(rs, "scopeSpans", "scope_spans") {
                guard case .object = scope else { throw Malformed(reason: "scopeSpans holding something else than objects") }
                out.spans += try list(scope, "spans", "spans").map(span)
            }
            return out
        }
    }

    static func span(_ v: JSONValue) throws -> OTLPSpan {
        guard case .object = v else { throw Malformed(reason: "a span that is not an object") }
        for key in ["attributes", "events", "links"] where list(v, key) > OTLPSpan.maxElements {
            throw Malformed(reason: "a span with more than \(OTLPSpan.maxElements) \(key)")
        }
        var s = OTLPSpan()
        s.traceID = try hex(v, "traceId", "trace_id")
        s.spanID = try hex(v, "spanId", "span_id")
        s.parentSpanID = try hex(v, "parentSpanId", "parent_span_id")
        s.traceState = try string(v, "traceState", "trace_state")
        s.flags = UInt32(try unsigned(v, "flags", "flags", max: UInt64(UInt32.max)))
        s.name = try string(v, "name", "name")
        s.kind = try enumeration(v, "kind", "kind", names: ["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                                              "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"])
        s.start = try unsigned(v, "startTimeUnixNano", "start_time_unix_nano", max: .max)
        s.end = try unsigned(v, "endTimeUnixNano", "end_time_unix_nano", max: .max)
        s.attributes = try list(v, "attributes", "attributes").map(attribute)
        s.events = try list(v, "events", "events").map { e in
            guard case .object = e else { throw Malformed(reason: "an event that is not an object") }
            return OTLPEvent(name: try string(e, "name", "name"), time: try unsigned(e, "timeUnixNano", "time_unix_nano", max: .max),
                             attributes: try list(e, "attributes", "attributes").map(attribute))
        }
        s.links = try list(v, "links", "links").map { l in
            guard case .object = l else { throw Malformed(reason: "a link that is not an object") }
            var link = OTLPLink()
            link.traceID = try hex(l, "traceId", "trace_id")
            link.spanID = try hex(l, "spanId", "span_id")
            link.traceState = try string(l, "traceState", "trace_state")
            link.attributes = try list(l, "attributes", "attributes").map(attribute)
            link.flags = UInt32(try unsigned(l, "flags", "flags", max: UInt64(UInt32.max)))
            return link
        }
        if let status = try object(v, "status", "status") {
            s.statusMessage = try string(status, "message", "message")
            s.statusCode = try enumeration(status, "code", "code", names: ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"])
        }
        return s
    }

    /// A `KeyValue`.
    static func attribute(_ v: JSONValue) throws -> OTLPAttribute {
        guard case .object = v else { throw Malformed(reason: "an attribute that is not an object") }
        return OTLPAttribute(key: try string(v, "key", "key"), value: try member(v, "value", "value").map(value) ?? .none)
    }

    /// An `AnyValue`: the kind its one member names (none: no kind).
    static func value(_ v: JSONValue) throws -> OTLPValue {
        guard case .object = v else { throw Malformed(reason: "a value that is not an object") }
        if let s = member(v, "stringValue", "string_value") {
            guard case .string(let t) = s else { throw Malformed(reason: "stringValue that is not a string") }
            return .string(t)
        }
        if let b = member(v, "boolValue", "bool_value") {
            guard case .bool(let t) = b else { throw Malformed(reason: "boolValue that is not a boolean") }
            return .bool(t)
        }
        if let i = member(v, "intValue", "int_value") {
            guard let n = integer(i) else { throw Malformed(reason: "intValue that is not an int64") }
            return .int(n)
        }
        if let d = member(v, "doubleValue", "double_value") {
            guard let x = d.double else { throw Malformed(reason: "doubleValue that is not a number") }
            return .double(x)
        }
        if let a = member(v, "arrayValue", "array_value") {
            guard case .object = a else { throw Malformed(reason: "arrayValue that is not an object") }
            return .array(try list(a, "values", "values").map(value))
        }
        if let m = member(v, "kvlistValue", "kvlist_value") {
            guard case .object = m else { throw Malformed(reason: "kvlistValue that is not an object") }
            return .map(try list(m, "values", "values").map(attribute))
        }
        if let b = member(v, "bytesValue", "bytes_value") {
            guard case .string(let t) = b, let data = Data(base64Encoded: t) else { throw Malformed(reason: "bytesValue that is not base64") }
            return .bytes(Array(data))
        }
        return .none
    }

    /// A member by its JSON name or its protobuf name (`null`: absent, as protobuf's JSON reads it).
    static func member(_ v: JSONValue, _ camel: String, _ snake: String) -> JSONValue? {
        guard let m = v[camel] ?? v[snake], m != .null else { return nil }
        return m
    }

    /// How many items a list member has (0 when absent or not a list).
    static func list(_ v: JSONValue, _ key: String) -> Int {
        if case .array(let items)? = v[key] { return items.count }
        return 0
    }

    static func object(_ v: JSONValue, _ camel: String, _ snake: String) throws -> JSONValue? {
        guard let m = member(v, camel, snake) else { return nil }
        guard case .object = m else { throw Malformed(reason: "\(camel) that is not an object") }
        return m
    }

    static func list(_ v: JSONValue, _ camel: String, _ snake: String) throws -> [JSONValue] {
        guard let m = member(v, camel, snake) else { return [] }
        guard case .array(let items) = m else { throw Malformed(reason: "\(camel) that is not a list") }
        return items
    }

    static func string(_ v: JSONValue, _ camel: String, _ snake: String) throws -> String {
        guard let m = member(v, camel, snake) else { return "" }
        guard case .string(let s) = m else { throw Malformed(reason: "\(camel) that is not a string") }
        return s
    }

    /// An id written as hex digits (empty: not given).
    static func hex(_ v: JSONValue, _ camel: String, _ snake: String) throws -> [UInt8] {
        let s = Array(try string(v, camel, snake).utf8)
        guard s.count % 2 == 0 else { throw Malformed(reason: "\(camel) that is not hex") }
        var out: [UInt8] = []
        out.reserveCapacity(s.count / 2)
        for i in stride(from: 0, to: s.count, by: 2) {
            guard let hi = PercentDecoding.hex(s[i]), let lo = PercentDecoding.hex(s[i + 1]) else { throw Malformed(reason: "\(camel) that is not hex") }
            out.append(hi << 4 | lo)
        }
        return out
    }

    /// An int64 as a number or a string of one (`1e3`-style exponents and fractions are refused, but `5.0` reads).
    static func integer(_ v: JSONValue) -> Int64? {
        switch v {
        case .number(let n), .string(let n):
            if let i = Int64(n) { return i }
            guard let d = Double(n), d == d.rounded(), abs(d) < 9.2e18 else { return nil }
            return Int64(d)
        default: return nil
        }
    }

    static func unsigned(_ v: JSONValue, _ camel: String, _ snake: String, max: UInt64) throws -> UInt64 {
        guard let m = member(v, camel, snake) else { return 0 }
        switch m {
        case .number(let n), .string(let n):
            if let u = UInt64(n), u <= max { return u }
            if let d = Double(n), d >= 0, d == d.rounded(), d < Double(max) { return UInt64(d) }
        default: break
        }
        throw Malformed(reason: "\(camel) that is not an unsigned integer")
    }

    /// An enum as its number or its name.
    static func enumeration(_ v: JSONValue, _ camel: String, _ snake: String, names: [String]) throws -> Int32 {
        guard let m = member(v, camel, snake) else { return 0 }
        if case .string(let name) = m, let i = names.firstIndex(of: name) { return Int32(i) }
        if case .number = m, let i = integer(m), let n = Int32(exactly: i) { return n }
        throw Malformed(reason: "\(camel) that is not one of \(names.joined(separator: ", "))")
    }
}
