/// A trace's outcome (MLflow 3's `TraceInfoV3.State`).
public enum TraceState: String, Sendable, CaseIterable {
    /// Not given, or a value this build does not know (MLflow stores an unknown state so as well).
    case unspecified = "STATE_UNSPECIFIED"
    /// Finished without error.
    case ok = "OK"
    /// The root span raised.
    case error = "ERROR"
    /// Still running.
    case inProgress = "IN_PROGRESS"

    /// The state a request names; an unknown name is ``unspecified``, as MLflow's protobuf parsing makes it.
    public init(apiName: String?) {
        self = apiName.flatMap(TraceState.init(rawValue:)) ?? .unspecified
    }

    /// The state an MLflow 2 `TraceStatus` names (`TRACE_STATUS_UNSPECIFIED`, `OK`, `ERROR`, `IN_PROGRESS`; an unknown
    /// name is ``unspecified``).
    public init(v2Name: String?) {
        self = v2Name == Self.unspecifiedV2Name ? .unspecified : TraceState(apiName: v2Name)
    }

    /// The state as MLflow 2's `TraceStatus` names it.
    public var v2Name: String { self == .unspecified ? Self.unspecifiedV2Name : rawValue }

    /// MLflow 2's `TraceStatus` names by their protobuf numbers (a request may send either).
    public static let v2Numbers: [Int64: String] = [0: unspecifiedV2Name, 1: "OK", 2: "ERROR", 3: "IN_PROGRESS"]

    static let unspecifiedV2Name = "TRACE_STATUS_UNSPECIFIED"
}

/// What MLflow 3 keeps of a trace besides its spans (`TraceInfoV3`): the spans themselves are a file in the
/// artifact store (`traces.json` under the `mlflow.artifactLocation` tag), written and read by the client.
public struct TraceInfo: Sendable, Equatable {
    /// `tr-` and 32 hex digits, chosen by the client.
    public var traceID: String
    /// The experiment the trace belongs to.
    public var experimentID: String
    /// An id the client's caller chose, if any.
    public var clientRequestID: String?
    /// When the root span started, in milliseconds since the epoch.
    public var requestTime: Int64
    /// How long the root span ran, in milliseconds (`nil`: not given).
    public var executionDuration: Int64?
    /// The outcome.
    public var state: TraceState
    /// The request as the client summarised it.
    public var requestPreview: String?
    /// The response as the client summarised it.
    public var responsePreview: String?
    /// The trace's metadata (immutable once written, by key).
    public var metadata: [KeyValue]
    /// The trace's tags (by key).
    public var tags: [KeyValue]
    /// Feedback, expectations and issue references logged on the trace, oldest first.
    public var assessments: [Assessment]
    /// Runs the trace was linked to after it was made (`traces/link-to-run`, by id order); the run it was made in is
    /// its `mlflow.sourceRun` metadata.
    public var linkedRuns: [String] = []
    /// Prompt versions linked to the trace (`traces/link-prompts`), each as MLflow names it (``PromptLink``), in byte
    /// order.
    public var linkedPrompts: [String] = []

    /// A trace.
    public init(traceID: String, experimentID: String, clientRequestID: String? = nil, requestTime: Int64, executionDuration: Int64? = nil,
                state: TraceState, requestPreview: String? = nil, responsePreview: String? = nil, metadata: [KeyValue] = [], tags: [KeyValue] = [],
                assessments: [Assessment] = []) {
        self.traceID = traceID
        self.experimentID = experimentID
        self.clientRequestID = clientRequestID
        self.requestTime = requestTime
        self.executionDuration = executionDuration
        self.state = state
        self.requestPreview = requestPreview
        self.responsePreview = responsePreview
        self.metadata = metadata
        self.tags = tags
        self.assessments = assessments
    }

    /// A tag's value.
    public func tag(_ key: String) -> String? { tags.first { $0.key == key }?.value }
    /// A metadata entry's value.
    public func metadata(_ key: String) -> String? { metadata.first { $0.key == key }?.value }
    /// When the trace ended: its start plus its duration (none: its start, as MLflow counts it), in milliseconds.
    public var endTime: Int64 { requestTime &+ (executionDuration ?? 0) }
    /// The earliest request time a trace may have (0001-01-01T00:00:00Z): times are kept within RFC 3339's years.
    public static let minTime: Int64 = -62_135_596_800_000
    /// The latest request time a trace may have (9999-12-31T23:59:59.999Z).
    public static let maxTime: Int64 = 253_402_300_799_999
    /// The longest duration a trace may have (protobuf's: 10,000 years), in milliseconds.
    public static let maxDuration: Int64 = 315_576_000_000_000
    /// Whether the tracking store keeps the trace's spans (sent over OTLP, or imported): its
    /// `mlflow.trace.spansLocation` is `TRACKING_STORE`, and readers fetch them with `traces/get`.
    public var keepsSpans: Bool { tag(TraceKeys.spansLocation) == TraceKeys.trackingStore }
    /// Every run the trace belongs to: the one it was made in, then those it was linked to.
    public var runs: [String] { (metadata(TraceKeys.sourceRun).map { [$0] } ?? []) + linkedRuns }
}

/// The kind of an ``Assessment``.
public enum AssessmentKind: String, Sendable, CaseIterable {
    /// A judgement of the trace (a human's, a judge's, code's).
    case feedback
    /// What the trace should have produced.
    case expectation
    /// A link to a ``TraceIssue`` found in the trace (MLflow's `IssueReference`): named after the issue's id, its value
    /// the issue's name (`issue.issue_name`).
    case issue

    /// MLflow's class of the kind with its article, as its messages name it ("a Feedback", "an IssueReference").
    var entityName: String {
        switch self {
        case .feedback: "a Feedback"
        case .expectation: "an Expectation"
        case .issue: "an IssueReference"
        }
    }
}

/// A feedback, expectation or issue reference logged on a trace (MLflow 3's `Assessment`). Tally reads the fields it searches and
/// orders by; the rest (`source`, the value, `rationale`, `error`, `metadata`, `span_id`) is kept as the client sent
/// it, as one JSON object (``body``).
public struct Assessment: Sendable, Equatable {
    /// `a-` and 32 hex digits, chosen by the server.
    public var id: String
    /// The trace it belongs to.
    public var traceID: String
    /// Its name (`quality`, `expected_response`, …).
    public var name: String
    /// Feedback, expectation or issue reference.
    public var kind: AssessmentKind
    /// When it was created, in milliseconds since the epoch.
    public var createTime: Int64
    /// When it last changed.
    public var lastUpdateTime: Int64
    /// `false` once another assessment overrides it.
    public var valid: Bool
    /// The assessment this one overrides, if any.
    public var overrides: String?
    /// The value as JSON text (`0.8`, `"good"`, `true`, `{"a": 1}`), what a `feedback.<name>` clause compares; `nil`
    /// when it has none (an error instead). An issue reference's is its one-of (`{"issue_name": …}`), as MLflow keeps it.
    public var value: String?
    /// The other fields, as a JSON object the server writes and reads.
    public var body: String

    /// An assessment.
    public init(id: String, traceID: String, name: String, kind: AssessmentKind, createTime: Int64, lastUpdateTime: Int64, valid: Bool = true,
                overrides: String? = nil, value: String?, body: String) {
        self.id = id
        self.traceID = traceID
        self.name = name
        self.kind = kind
        self.createTime = createTime
        self.lastUpdateTime = lastUpdateTime
        self.valid = valid
        self.overrides = overrides
        self.value = value
        self.body = body
    }
}

/// The tag and metadata keys MLflow gives meaning to on a trace.
public enum TraceKeys {
    /// Tag: where the client writes and reads the trace's spans (`<experiment artifacts>/traces/<id>/artifacts`).
    public static let artifactLocation = "mlflow.artifactLocation"
    /// Tag: the root span's name (`trace.name` in a search).
    public static let traceName = "mlflow.traceName"
    /// Tag: the prompt versions the client used in the trace, as JSON (`[{"name": …, "version": "1"}]`), which it writes
    /// beside `traces/link-prompts`; a search's `tags.mlflow.linkedPrompts = …` asks about the links (``PromptLink``).
    public static let linkedPrompts = "mlflow.linkedPrompts"
    /// Tag: where the spans are: `TRACKING_STORE` when they came over OTLP and are kept in the metadata store (readers
    /// then fetch them with `traces/get` and `traces/batchGet`); none when the client wrote them to the artifact store.
    public static let spansLocation = "mlflow.trace.spansLocation"
    /// The ``spansLocation`` of a trace whose spans the tracking store keeps.
    public static let trackingStore = "TRACKING_STORE"
    /// Metadata: the conversation the trace belongs to.
    public static let session = "mlflow.trace.session"
    /// Metadata: the client's count of the trace's spans and their sizes (JSON: `num_spans`, `total_size_bytes`, …).
    public static let sizeStats = "mlflow.trace.sizeStats"
    /// Metadata: the end user the trace served.
    public static let user = "mlflow.trace.user"
    /// Metadata: the run the trace was made in (`trace.run_id` in a search).
    public static let sourceRun = "mlflow.sourceRun"
    /// Metadata: set on every trace the server has stored (MLflow's marker that the trace's fields are final).
    public static let infoFinalized = "mlflow.trace.infoFinalized"
    /// Metadata: the trace's token counts (JSON: `input_tokens`, `output_tokens`, `total_tokens`, cache counts).
    public static let tokenUsage = "mlflow.trace.tokenUsage"
    /// Metadata: the trace's cost in US dollars (JSON: `input_cost`, `output_cost`, `total_cost`).
    public static let cost = "mlflow.trace.cost"
    /// The metadata MLflow keeps as columns summed from spans (``tokenUsage``, ``cost``).
    static let summedMetadata: Set<String> = [tokenUsage, cost]
}

extension Assessment {
    /// An assessment message as MLflow's REST layer reads it: its `feedback.value` and `expectation.value` are
    /// protobuf `Value`s, whose numbers are doubles, so a client's `7` is stored and answered as `7.0` (at any depth).
    /// Other members are as sent.
    public static func protobufValues(_ message: JSONValue) -> JSONValue {
        guard case .object(let members) = message else { return message }
        return .object(members.map { name, v in
            guard name == "feedback" || name == "expectation", case .object(let inner) = v else { return (name, v) }
            return (name, .object(inner.map { $0.0 == "value" ? ($0.0, AssessmentAggregate.doubles($0.1)) : $0 }))
        })
    }
}
