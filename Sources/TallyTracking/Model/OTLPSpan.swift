/// A value of an OpenTelemetry attribute (OTLP's `AnyValue`): one of its kinds, or none when the sender set none.
public indirect enum OTLPValue: Sendable, Equatable {
    /// An `AnyValue` with no kind set.
    case none
    /// `string_value`.
    case string(String)
    /// `bool_value`.
    case bool(Bool)
    /// `int_value`.
    case int(Int64)
    /// `double_value`.
    case double(Double)
    /// `bytes_value`.
    case bytes([UInt8])
    /// `array_value`.
    case array([OTLPValue])
    /// `kvlist_value`, in the sender's order.
    case map([OTLPAttribute])
}

/// An attribute (OTLP's `KeyValue`).
public struct OTLPAttribute: Sendable, Equatable {
    /// The key.
    public var key: String
    /// The value.
    public var value: OTLPValue

    /// An attribute.
    public init(key: String, value: OTLPValue) {
        self.key = key
        self.value = value
    }
}

/// Something that happened during a span (OTLP's `Span.Event`).
public struct OTLPEvent: Sendable, Equatable {
    /// Its name.
    public var name = ""
    /// When, in nanoseconds since the epoch.
    public var time: UInt64 = 0
    /// Its attributes.
    public var attributes: [OTLPAttribute] = []

    /// An event.
    public init(name: String = "", time: UInt64 = 0, attributes: [OTLPAttribute] = []) {
        self.name = name
        self.time = time
        self.attributes = attributes
    }
}

/// A span another span points to (OTLP's `Span.Link`).
public struct OTLPLink: Sendable, Equatable {
    /// The linked span's trace id (16 bytes).
    public var traceID: [UInt8] = []
    /// The linked span's id (8 bytes).
    public var spanID: [UInt8] = []
    /// Its W3C trace state.
    public var traceState = ""
    /// The link's attributes.
    public var attributes: [OTLPAttribute] = []
    /// W3C trace flags.
    public var flags: UInt32 = 0

    /// A link.
    public init() {}
}

/// One span as an OpenTelemetry exporter sends it (OTLP's `Span`, the fields MLflow keeps).
public struct OTLPSpan: Sendable, Equatable {
    /// The most attributes, events or links one span may carry (OpenTelemetry's SDKs keep 128 by default): a few
    /// bytes of protobuf per empty link or event would otherwise become a hundred of stored JSON each.
    public static let maxElements = 65_536

    /// The trace id: 16 bytes (empty: not given).
    public var traceID: [UInt8] = []
    /// The span id: 8 bytes (empty: not given).
    public var spanID: [UInt8] = []
    /// Its W3C trace state.
    public var traceState = ""
    /// The parent's span id; empty for a root span.
    public var parentSpanID: [UInt8] = []
    /// W3C trace flags.
    public var flags: UInt32 = 0
    /// The operation's name.
    public var name = ""
    /// `SpanKind` (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer).
    public var kind: Int32 = 0
    /// When it started, in nanoseconds since the epoch.
    public var start: UInt64 = 0
    /// When it ended, in nanoseconds since the epoch (0: not given).
    public var end: UInt64 = 0
    /// Its attributes, in the sender's order.
    public var attributes: [OTLPAttribute] = []
    /// Its events.
    public var events: [OTLPEvent] = []
    /// Its links.
    public var links: [OTLPLink] = []
    /// `Status.code` (0 unset, 1 ok, 2 error).
    public var statusCode: Int32 = 0
    /// `Status.message`.
    public var statusMessage = ""

    /// A span.
    public init() {}
}

/// The spans of one resource (OTLP's `ResourceSpans`, its scopes' spans together): what produced them, and them.
public struct OTLPResourceSpans: Sendable, Equatable {
    /// The resource's attributes (`service.name`, …).
    public var resource: [OTLPAttribute] = []
    /// The spans, in the order they were sent.
    public var spans: [OTLPSpan] = []

    /// Spans of a resource.
    public init(resource: [OTLPAttribute] = [], spans: [OTLPSpan] = []) {
        self.resource = resource
        self.spans = spans
    }
}
