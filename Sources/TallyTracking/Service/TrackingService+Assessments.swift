extension TrackingService {
    /// MLflow's 404 for an assessment a trace does not have.
    static func assessmentNotFound(_ id: String, trace: String) -> TrackingError {
        TrackingError.notFound("Assessment with ID '\(id)' not found for trace '\(trace)'")
    }

    /// MLflow's 404 for the trace of an assessment's get or update.
    static func assessmentTraceNotFound(_ id: String) -> TrackingError { TrackingError.notFound("Trace with request_id '\(id)' not found") }

    /// `traces/{id}/assessments` (POST): adds a feedback, expectation or issue reference to a trace. The server gives
    /// it an id (and times, when the client sent none); one that `overrides` another marks that one invalid. The store
    /// checks the trace and the overridden assessment in the write's own transaction (MLflow's 404s: the trace's, then
    /// the overridden one's).
    public func createAssessment(_ a: Assessment, kind: AssessmentKind?) throws -> Assessment {
        guard let kind else { throw TrackingError.invalid("Unknown assessment type: None") }
        guard !a.name.isEmpty else { throw Validation.missing("assessment_name") }
        var a = Self.stamped(a, now: clock())
        a.kind = kind
        a.id = Self.newAssessmentID()
        a.valid = true
        guard try metadata.insertAssessment(a) else { throw TrackingError.notFound("Trace with ID '\(a.traceID)' not found.") }
        return a
    }

    /// `traces/{id}/assessments/{assessment_id}` (GET); MLflow's 404s for a missing trace or assessment.
    public func assessment(traceID: String, id: String) throws -> Assessment {
        guard let t = try metadata.traces(ids: [traceID]).first else {
            throw Self.assessmentTraceNotFound(traceID)
        }
        guard let a = t.assessments.first(where: { $0.id == id }) else {
            throw Self.assessmentNotFound(id, trace: traceID)
        }
        return a
    }

    /// The fields an `update_mask` names (its paths in the API's camelCase or in snake_case; others are ignored, as
    /// MLflow's handler ignores them).
    public static func assessmentMask(_ mask: String?) throws -> Set<String> {
        guard let mask, !mask.isEmpty else { throw Validation.missing("update_mask") }
        let known = Set(["assessment_name", "rationale", "metadata", "valid"] + AssessmentKind.allCases.map(\.rawValue))
        return Set(mask.split(separator: ",").map { path in
            path.trimmingSpaces().reduce(into: "") { s, c in s += c.isUppercase ? "_" + c.lowercased() : String(c) }
        }.filter(known.contains))
    }

    /// `traces/{id}/assessments/{assessment_id}` (PATCH): `apply` changes the fields `mask` names
    /// (``assessmentMask(_:)``); the source, span and creation time stay, the update time is now. An assessment's kind
    /// stays: a feedback's value cannot become an expectation's, nor either an issue reference.
    public func updateAssessment(traceID: String, id: String, mask: Set<String>, _ apply: (inout Assessment) throws -> Void) throws -> Assessment {
        guard try metadata.traceExperiment(id: traceID) != nil else { throw Self.assessmentTraceNotFound(traceID) }  // the trace's 404 first
        let now = clock()
        // Read, changed and written back holding the row: a concurrent override (which marks this one invalid) or
        // another update is not undone by writing back what was read before it. The mask's checks come once the
        // assessment is found (its 404 first, as MLflow's).
        let updated = try metadata.updateAssessment(traceID: traceID, id: id) { a in
            if mask.contains("feedback") && mask.contains("expectation") {
                throw TrackingError.invalid("Cannot specify both `expectation` and `feedback` parameters.")
            }
            for kind in AssessmentKind.allCases where mask.contains(kind.rawValue) && a.kind != kind {
                throw TrackingError.invalid("Cannot update \(kind.rawValue) value on \(a.kind.entityName) assessment.")
            }
            let (kind, created) = (a.kind, a.createTime)
            try apply(&a)
            (a.kind, a.createTime) = (kind, created)
            a.lastUpdateTime = max(now, created)
        }
        guard let updated else { throw Self.assessmentNotFound(id, trace: traceID) }
        return updated
    }

    /// `traces/{id}/assessments/{assessment_id}` (DELETE): gone, if it was there (deleting twice is no error).
    public func deleteAssessment(traceID: String, id: String) throws {
        _ = try metadata.deleteAssessment(traceID: traceID, id: id)
    }
}
