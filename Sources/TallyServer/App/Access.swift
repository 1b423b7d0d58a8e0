import Hummingbird
import TallyTracking

/// What a route needs of its caller: every route of every ``RouteTable`` declares one, so a route cannot be added
/// without saying who may call it. The generated access test reads these declarations back (``RouteTable/entries``).
enum Access: Sendable {
    /// No credentials (`/health`, `/version`, `server-info`, the UI's shell and login).
    case open
    /// Any authenticated caller; the service applies their grants (searches filter, compare and scoreboard refuse
    /// unreadable runs) or its own rules (users, tokens, grants).
    case user
    /// Admins only.
    case admin
    /// Any authenticated caller whom a DENY on every resource of the type (`*`) does not bar from creating one
    /// (MLflow's create veto); the creator then gets MANAGE on what they create.
    case creates(ResourceType)
    /// A level on the resource a request names.
    case needs(Permission.Need, Target)
}

/// Where a request names the resource a route acts on.
enum Target: Sendable {
    /// An experiment id field of the MLflow request (query for GET, JSON body otherwise); `default` is the
    /// experiment the route uses when the field is absent.
    case experimentField(String, default: String? = nil)
    /// An experiment name field.
    case experimentNameField(String)
    /// The run of `run_id` (or `run_uuid`).
    case runField
    /// A registered model name field.
    case modelField(String)
    /// A run id path parameter.
    case runPath(String)
    /// A logged-model id path parameter.
    case loggedModelPath(String)
    /// A trace id path parameter (an unknown trace is refused as unreadable, as MLflow's auth app refuses it).
    case tracePath(String)
    /// A trace id query parameter (required; an unknown trace is refused as ``tracePath(_:)`` refuses it).
    case traceQuery(String)
    /// Every trace id query parameter of this name (at least one; an unknown trace is refused as ``tracePath(_:)``
    /// refuses it): MLflow's all-or-nothing check of `traces/batchGet`.
    case traceQueryAll(String)
    /// A trace id field (required; an unknown trace is refused as ``tracePath(_:)`` refuses it).
    case traceField(String)
    /// Every trace id of a list field (required, possibly empty; an unknown trace is refused as ``tracePath(_:)``
    /// refuses it): the all-or-nothing check of `traces/batchGetInfos`.
    case traceFieldAll(String)
    /// An experiment id request header (OTLP's `x-mlflow-experiment-id`).
    case experimentHeader(String)
    /// The experiment of a trace a request sends (`trace.trace_info.trace_location.mlflow_experiment.experiment_id`).
    case traceLocation
    /// Run id query parameters (every one given is checked).
    case runQuery([String])
    /// An evaluation dataset id path parameter: the level is needed on every experiment the dataset is linked to, and
    /// one linked to none (or unknown) is refused, as MLflow's auth app refuses it.
    case datasetPath(String)
    /// A list of experiment ids in the request's fields: the level is needed on each, and an empty list is refused
    /// (MLflow's `validate_can_create_dataset`).
    case experimentListField(String)
    /// A registered scorer named by the `experiment_id` and `name` fields (and `version`, for a delete): MLflow's
    /// scorer rules (``Grants/requireScorer(_:experimentID:name:version:)``).
    case scorerFields
    /// A proxied artifact path (`<experiment id>/…`), from the URL or the `path` query parameter.
    case artifactPath

    /// Whether the resource is named in fields the JSON handler reads (checked once the request is parsed).
    var inFields: Bool {
        switch self {
        case .experimentField, .experimentNameField, .runField, .modelField, .traceLocation, .experimentListField, .traceField, .traceFieldAll, .scorerFields: true
        default: false
        }
    }
}

/// A check waiting for the request's fields.
struct Requirement: Sendable {
    let need: Permission.Need
    let target: Target
}
