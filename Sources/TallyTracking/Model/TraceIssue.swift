/// An MLflow 3 issue (`mlflow.entities.Issue`): a quality or operational problem found in an experiment's traces, by
/// `mlflow.genai.discover_issues` or by hand. Traces are linked to it by issue-reference assessments (kind
/// ``AssessmentKind/issue``, named after the issue's id); how many traces it touches is counted from them.
public struct TraceIssue: Sendable, Equatable {
    /// `iss-` and 32 hex digits.
    public var id: String
    /// The experiment it belongs to (canonical).
    public var experimentID: String
    /// A short name.
    public var name: String
    /// What the problem is.
    public var description: String
    /// Where its review stands.
    public var status: IssueStatus
    /// How bad it is, when judged.
    public var severity: IssueSeverity?
    /// Analyses of its causes (none: not yet known).
    public var rootCauses: [String]
    /// The run that found it (a discovery run), if any.
    public var sourceRunID: String?
    /// Its categories (none: not yet known).
    public var categories: [String]
    /// Who made it, when the client said.
    public var createdBy: String?
    /// When it was made (ms).
    public var creationTime: Int64
    /// When it last changed (ms).
    public var lastUpdateTime: Int64
    /// How many traces refer to it, when a search asked (``IssueSearch/includeTraceCount``).
    public var traceCount: Int64?

    /// An issue.
    public init(id: String, experimentID: String, name: String, description: String, status: IssueStatus = .pending,
                severity: IssueSeverity? = nil, rootCauses: [String] = [], sourceRunID: String? = nil, categories: [String] = [],
                createdBy: String? = nil, creationTime: Int64, lastUpdateTime: Int64, traceCount: Int64? = nil) {
        self.id = id
        self.experimentID = experimentID
        self.name = name
        self.description = description
        self.status = status
        self.severity = severity
        self.rootCauses = rootCauses
        self.sourceRunID = sourceRunID
        self.categories = categories
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
        self.traceCount = traceCount
    }
}

/// Where an issue's review stands (MLflow's `IssueStatus`, by value).
public enum IssueStatus: String, Sendable, CaseIterable {
    /// Found, not yet reviewed (a new issue's status).
    case pending
    /// Judged not to be a problem.
    case rejected
    /// Fixed.
    case resolved
}

/// How bad an issue is (MLflow's `IssueSeverity`, by value), least first: searches list the worst first.
public enum IssueSeverity: String, Sendable, CaseIterable {
    /// Judged not to be an issue after all.
    case notAnIssue = "not_an_issue"
    /// Minor.
    case low
    /// Worth fixing soon.
    case medium
    /// Serious: listed first.
    case high

    /// Its place in MLflow's order (`not_an_issue` 0 … `high` 3); an issue without a severity ranks below all (-1).
    public var rank: Int { Self.allCases.firstIndex(of: self)! }
}

/// The filter of `issues/search` (MLflow's `SearchIssuesUtils`): clauses on `status` and `source_run_id`, compared
/// with `=` or `!=` and joined by AND. As MLflow's SQL compares them, `source_run_id != 'x'` leaves out issues
/// without a source run.
public struct IssueFilter: Sendable, Equatable {
    /// One `field comparator value` clause.
    public struct Clause: Sendable, Equatable {
        /// `status` or `source_run_id`.
        public var field: String
        /// Whether it is `!=` (else `=`).
        public var negated: Bool
        /// The value, without its quotes.
        public var value: String
    }

    /// The clauses (none: every issue).
    public var clauses: [Clause]

    /// The fields a clause may name.
    static let fields = ["status", "source_run_id"]
}

/// What `issues/search` asks for.
public struct IssueSearch: Sendable, Equatable {
    /// The experiment (canonical), or every one.
    public var experimentID: String?
    /// The clauses.
    public var filter: IssueFilter
    /// Whether each issue's ``TraceIssue/traceCount`` is counted, and the order uses it.
    public var includeTraceCount: Bool

    /// A search.
    public init(experimentID: String?, filter: IssueFilter, includeTraceCount: Bool) {
        self.experimentID = experimentID
        self.filter = filter
        self.includeTraceCount = includeTraceCount
    }
}
