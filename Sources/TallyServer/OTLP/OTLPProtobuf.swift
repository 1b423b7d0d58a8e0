import TallyTracking

/// OTLP/HTTP's binary body (`application/x-protobuf`): an `ExportTraceServiceRequest`
/// (`opentelemetry/proto/collector/trace/v1`) read from protobuf's wire format by hand — the twenty-odd fields MLflow
/// keeps of a span, every other field skipped as protobuf skips an unknown one. A message given twice is merged, a
/// repeated field appended to, as protobuf's parser does; a truncated or malformed body, a wire type that cannot be
/// skipped, or a string that is not UTF-8 is refused (``OTLPProtobuf/Malformed``), as Python's parser refuses it.
/// The field numbers are `docs/otlp.md`'s.
enum OTLPProtobuf {
    /// The body is not a well-formed protobuf message of this kind.
    struct Malformed: Error, Equatable {
        /// What was wrong, and where (the byte offset in the body).
        let reason: String
    }

    /// The resource spans of an `ExportTraceServiceRequest`, each resource's scopes' spans together.
    static func exportRequest(_ body: [UInt8]) throws -> [OTLPResourceSpans] {
        var out: [OTLPResourceSpans] = []
        try body.withUnsafeBytes { raw in
            var r = ProtoReader(raw)
            while let (field, wire) = try r.tag() {
                if field == 1, wire == 2 { out.append(try resourceSpans(r.message())) } else { try r.skip(wire) }
            }
        }
        return out
    }

    static func resourceSpans(_ r: ProtoReader) throws -> OTLPResourceSpans {
        var r = r, out = OTLPResourceSpans()
        while let (field, wire) = try r.tag() {
            switch (field, wire) {
            case (1, 2):  // resource
                var m = try r.message()
                while let (f, w) = try m.tag() {
                    if f == 1, w == 2 { out.resource.append(try attribute(m.message())) } else { try m.skip(w) }
                }
            case (2, 2):  // scope_spans
                var m = try r.message()
                while let (f, w) = try m.tag() {
                    if f == 2, w == 2 { out.spans.append(try span(m.message())) } else { try m.skip(w) }
                }
            default: try r.skip(wire)
            }
        }
        return out
    }

    static func span(_ r: ProtoReader) throws -> OTLPSpan {
        var r = r, s = OTLPSpan()
        while let (field, wire) = try r.tag() {
            switch (field, wire) {
            case (1, 2): s.traceID = try r.bytes()
            case (2, 2): s.spanID = try r.bytes()
            case (3, 2): s.traceState = try r.string()
            case (4, 2): s.parentSpanID = try r.bytes()
            case (5, 2): s.name = try r.string()
            case (6, 0): s.kind = Int32(truncatingIfNeeded: try r.varint())
            case (7, 1): s.start = try r.fixed64()
            case (8, 1): s.end = try r.fixed64()
            case (9, 2): s.attributes.append(try attribute(r.message()))
            case (11, 2): s.events.append(try event(r.message()))
            case (13, 2): s.links.append(try link(r.message()))
            case (15, 2):  // status: message 2, code 3
                var m = try r.message()
                while let (f, w) = try m.tag() {
                    switch (f, w) {
                    case (2, 2): s.statusMessage = try m.string()
                    case (3, 0): s.statusCode = Int32(truncatingIfNeeded: try m.varint())
                    default: try m.skip(w)
                    }
                }
            case (16, 5): s.flags = try r.fixed32()
            default: try r.skip(wire)
            }
            guard max(s.attributes.count, s.events.count, s.links.count) <= OTLPSpan.maxElements else {
                throw Malformed(reason: "a span with more than \(OTLPSpan.maxElements) attributes, events or links")
            }
        }
        return s
    }

    static func event(_ r: ProtoReader) throws -> OTLPEvent {
        var r = r, e = OTLPEvent()
        while let (field, wire) = try r.tag() {
            switch (field, wire) {
            case (1, 1): e.time = try r.fixed64()
            case (2, 2): e.name = try r.string()
            case (3, 2): e.attributes.append(try attribute(r.message()))
            default: try r.skip(wire)
            }
        }
        return e
    }

    static func link(_ r: ProtoReader) throws -> OTLPLink {
        var r = r, l = OTLPLink()
        while let (field, wire) = try r.tag() {
            switch (field, wire) {
            case (1, 2): l.traceID = try r.bytes()
            case (2, 2): l.spanID = try r.bytes()
            case (3, 2): l.traceState = try r.string()
            case (4, 2): l.attributes.append(try attribute(r.message()))
            case (6, 5): l.flags = try r.fixed32()
            default: try r.skip(wire)
            }
        }
        return l
    }

    /// A `KeyValue`.
    static func attribute(_ r: ProtoReader) throws -> OTLPAttribute {
        var r = r, a = OTLPAttribute(key: "", value: .none)
        while let (field, wire) = try r.tag() {
            switch (field, wire) {
            case (1, 2): a.key = try r.string()
            case (2, 2): a.value = try value(r.message(), merging: a.value)
            default: try r.skip(wire)
            }
        }
        return a
    }

    /// An `AnyValue` (a oneof: the last kind given wins; a message kind given twice is merged).
    static func value(_ r: ProtoReader, merging old: OTLPValue) throws -> OTLPValue {
        var r = r, v = old
        while let (field, wire) = try r.tag() {
            switch (field, wire) {
            case (1, 2): v = .string(try r.string())
            case (2, 0): v = .bool(try r.varint() != 0)
            case (3, 0): v = .int(Int64(bitPattern: try r.varint()))
            case (4, 1): v = .double(Double(bitPattern: try r.fixed64()))
            case (5, 2):  // ArrayValue: values 1
                var items: [OTLPValue] = []
                if case .array(let before) = v { items = before }
                var m = try r.message()
                while let (f, w) = try m.tag() {
                    if f == 1, w == 2 { items.append(try value(m.message(), merging: .none)) } else { try m.skip(w) }
                }
                v = .array(items)
            case (6, 2):  // KeyValueList: values 1
                var items: [OTLPAttribute] = []
                if case .map(let before) = v { items = before }
                var m = try r.message()
                while let (f, w) = try m.tag() {
                    if f == 1, w == 2 { items.append(try attribute(m.message())) } else { try m.skip(w) }
                }
                v = .map(items)
            case (7, 2): v = .bytes(try r.bytes())
            default: try r.skip(wire)
            }
        }
        return v
    }
}

/// A cursor over protobuf's wire format in borrowed bytes (valid while the buffer it reads is).
struct ProtoReader {
    private let base: UnsafeRawBufferPointer
    private var at: Int
    private let end: Int
    /// How many messages this one is nested in.
    private let depth: Int

    /// The deepest nesting read (a request, its resource, scope, span, event, attribute, then values: about 30
    /// levels of arrays or lists in an attribute value): deeper is refused, before the recursion that reads it runs
    /// out of stack, and so that every stored span's JSON reads back within the JSON parser's depth.
    static let maxDepth = 70

    init(_ base: UnsafeRawBufferPointer) {
        self.base = base
        self.at = 0
        self.end = base.count
        self.depth = 0
    }

    private init(_ base: UnsafeRawBufferPointer, from: Int, to: Int, depth: Int) {
        self.base = base
        self.at = from
        self.end = to
        self.depth = depth
    }

    private func fail(_ what: String) -> OTLPProtobuf.Malformed { OTLPProtobuf.Malformed(reason: "\(what) at byte \(at)") }

    /// The next field's number and wire type, `nil` at the end. Field 0 and wire types 6 and 7 are malformed.
    mutating func tag() throws -> (UInt32, UInt8)? {
        guard at < end else { return nil }
        let key = try varint()
        let field = key >> 3, wire = UInt8(key & 7)
        guard field > 0, field <= 0x1FFF_FFFF, wire <= 5 else { throw fail("invalid tag \(key)") }
        return (UInt32(field), wire)
    }

    /// A base-128 varint (at most 10 bytes).
    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard at < end else { throw fail("truncated varint") }
            let b = base[at]
            at += 1
            guard shift < 64 else { throw fail("varint longer than 10 bytes") }
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }

    /// Eight little-endian bytes.
    mutating func fixed64() throws -> UInt64 {
        guard end - at >= 8 else { throw fail("truncated fixed64") }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(base[at + i]) << (8 * UInt64(i)) }
        at += 8
        return v
    }

    /// Four little-endian bytes.
    mutating func fixed32() throws -> UInt32 {
        guard end - at >= 4 else { throw fail("truncated fixed32") }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(base[at + i]) << (8 * UInt32(i)) }
        at += 4
        return v
    }

    /// The bounds of a length-delimited field's contents, the cursor moved past it.
    private mutating func delimited() throws -> Range<Int> {
        let n = try varint()
        guard n <= UInt64(end - at) else { throw fail("length \(n) past the end") }
        let r = at..<(at + Int(n))
        at = r.upperBound
        return r
    }

    /// A length-delimited field's bytes.
    mutating func bytes() throws -> [UInt8] { Array(UnsafeRawBufferPointer(rebasing: base[try delimited()])) }

    /// A length-delimited field as UTF-8 text (proto3 strings must be valid UTF-8).
    mutating func string() throws -> String {
        let r = try delimited()
        guard let s = String(validating: UnsafeRawBufferPointer(rebasing: base[r]), as: UTF8.self) else {
            throw OTLPProtobuf.Malformed(reason: "a string that is not UTF-8 at byte \(r.lowerBound)")
        }
        return s
    }

    /// An embedded message: a reader over its bytes.
    mutating func message() throws -> ProtoReader {
        let r = try delimited()
        guard depth < Self.maxDepth else { throw fail("messages nested deeper than \(Self.maxDepth)") }
        return ProtoReader(base, from: r.lowerBound, to: r.upperBound, depth: depth + 1)
    }

    /// Skips a field of wire type `wire` (a group up to its end tag).
    mutating func skip(_ wire: UInt8) throws {
        switch wire {
        case 0: _ = try varint()
        case 1: _ = try fixed64()
        case 2: _ = try delimited()
        case 5: _ = try fixed32()
        case 3:  // counted, not recursed into: nested groups cost no stack
            var open = 1
            while open > 0 {
                guard let (_, w) = try tag() else { throw fail("unterminated group") }
                switch w {
                case 3: open += 1
                case 4: open -= 1
                default: try skip(w)
                }
            }
        default: throw fail("unexpected end-group tag")
        }
    }
}
