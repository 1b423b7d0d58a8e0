import Synchronization

extension TrackingService {
    /// The experiment a run belongs to (what its permission is), 404 with MLflow's message when there is no run.
    public func experimentID(ofRun id: String) throws -> String {
        if let e = runExperiments.withLock({ $0[id] }) { return e }
        guard let info = try metadata.runInfo(id: id) else { throw TrackingError.notFound("Run with id=\(id) not found") }
        runExperiments.withLock { m in
            if m.count >= Self.maxRunExperiments { m = [:] }
            m[id] = info.experimentID
        }
        return info.experimentID
    }

    /// The experiment of a run looked up before (no database, no lock a write holds), else `nil`.
    public func knownExperimentID(ofRun id: String) -> String? { runExperiments.withLock { $0[id] } }

    /// Most runs ``experimentID(ofRun:)`` remembers.
    static let maxRunExperiments = 100_000

    /// The experiment a logged model belongs to (deleted ones too).
    public func experimentID(ofLoggedModel id: String) throws -> String { try loggedModel(id: id, allowDeleted: true).experimentID }

    /// The id of the experiment of that name.
    public func experimentID(named name: String) throws -> String { try experiment(named: name).experimentID }

    /// Throws 403 unless `scope` may read the run's experiment.
    func requireRead(run id: String, _ scope: Grants) throws {
        guard !scope.isUnrestricted else { return }
        try Validation.runID(id)
        try scope.require(.read, on: .experiment(try experimentID(ofRun: id)))
    }
}
