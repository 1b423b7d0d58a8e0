import Synchronization

/// The runs of recently searched experiments, each as of a known point in the database's history, so a search
/// reads only what changed since (one statement when nothing did) instead of every run with its params and tags.
///
/// Every change to a run or anything of it stamps the run's `version` with the writing transaction's id (schema
/// version 2's triggers), except a param's insert and a latest row's write: params and latest rows carry their own
/// versions (schema version 18). An entry remembers its *horizon*: the oldest transaction still running when it was
/// read (`pg_snapshot_xmin`). Every transaction below the horizon had finished by then, so its changes are in the
/// entry; a run whose version, or the version of one of its params or of its latest row, is at or above the horizon
/// may have changed since and is read again. A run count that differs after applying the changes (runs removed for
/// good) reads the experiment again in full. Nothing is ever served without that check, so another server's write is
/// seen by the next search, as without a cache.
///
/// Bounded by runs held (least recently searched experiments dropped first); an experiment larger than the whole
/// bound is read directly every time.
final class SearchCache: Sendable {
    /// A run as the search needs it: the full run (no metrics) and its latest row.
    struct Entry: Sendable {
        var run: Run
        var latest: [UInt8]
    }

    /// One experiment's runs, and the values of metric keys searches asked for, decoded from the latest rows once
    /// (by key id, then run; `nil`: the run has no value; absent: not decoded yet).
    struct Experiment: Sendable {
        var horizon: Int64
        var runs: [String: Entry]
        var used: UInt64
        var columns: [Int64: [String: Double?]] = [:]
    }

    /// The most metric keys whose values are kept per experiment (more: the kept ones are dropped and start again).
    static let columnsPerExperiment = 32

    struct State: Sendable {
        var experiments: [Int64: Experiment] = [:]
        var held = 0
        var clock: UInt64 = 0
    }

    /// The most runs held across experiments.
    let capacity: Int
    let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The cached runs of an experiment (and their horizon), marking it used.
    func get(_ id: Int64) -> Experiment? {
        state.withLock { s in
            s.clock += 1
            s.experiments[id]?.used = s.clock
            return s.experiments[id]
        }
    }

    /// Keeps `e` (its runs and the values decoded for them) for `id` unless a newer state (a later horizon) is
    /// there, then drops least recently used experiments until the bound holds.
    func put(_ id: Int64, _ e: Experiment) {
        guard e.runs.count <= capacity else { return drop(id) }
        state.withLock { s in
            if let old = s.experiments[id] {
                guard old.horizon <= e.horizon else { return }
                s.held -= old.runs.count
            }
            s.clock += 1
            var e = e
            e.used = s.clock
            s.experiments[id] = e
            s.held += e.runs.count
            while s.held > capacity, let oldest = s.experiments.min(by: { $0.value.used < $1.value.used }) {
                s.held -= oldest.value.runs.count
                s.experiments[oldest.key] = nil
            }
        }
    }

    /// Adds values decoded for the experiment's state at `horizon` (kept only while that is still the state held).
    func addColumns(_ id: Int64, horizon: Int64, _ decoded: [Int64: [String: Double?]]) {
        state.withLock { s in
            guard var e = s.experiments[id], e.horizon == horizon else { return }
            if e.columns.count + decoded.count > Self.columnsPerExperiment { e.columns = [:] }
            for (k, values) in decoded { e.columns[k, default: [:]].merge(values) { _, new in new } }
            s.experiments[id] = e
        }
    }

    /// Forgets an experiment.
    func drop(_ id: Int64) {
        state.withLock { s in
            if let old = s.experiments.removeValue(forKey: id) { s.held -= old.runs.count }
        }
    }
}

extension PostgresMetadataStore {
    /// The runs of one experiment (any stage) with their latest rows and the values decoded so far: from the search
    /// cache after reading what changed since its horizon, or read in full.
    func experimentRuns(_ c: PostgresDatabase.Connection, _ experiment: Int64) throws -> SearchCache.Experiment {
        if let cached = searchCache.get(experiment) {
            // Runs of the experiment stamped since the horizon (0), and runs of any experiment with params or latest
            // rows written since (1, 2: their own versions; kept when the cache holds the run, since a run the cache
            // lacks is either new, and stamped, or another experiment's). The child tables are read from their version
            // indexes alone, each range bounded above by the snapshot's `xmax` too (no row it sees is newer): a
            // range's estimate keeps the plan on the index in a generic plan and before the tables are analysed. The
            // whole database's writes since the horizon may be many (an experiment searched long ago, a transaction
            // left open somewhere holding the horizon back): past `limit` rows from either table, reading the
            // experiment again costs less, and it is read in full.
            let limit = cached.runs.count + 1_000
            let rows = try c.rows("SELECT s.h, s.n, r.run_uuid, r.k FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS h, "
                                  + "pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS x, (SELECT count(*) FROM runs WHERE experiment_id = ?) AS n) s "
                                  + "LEFT JOIN LATERAL (SELECT run_uuid, 0 AS k FROM runs WHERE experiment_id = ? AND version >= ? UNION ALL "
                                  + "(SELECT run_uuid, 1 FROM params WHERE version >= ? AND version <= s.x LIMIT ?) UNION ALL "
                                  + "(SELECT run_uuid, 2 FROM run_latest WHERE version >= ? AND version <= s.x LIMIT ?)) r ON true",
                                  [.integer(experiment), .integer(experiment), .integer(cached.horizon), .integer(cached.horizon), .integer(Int64(limit)),
                                   .integer(cached.horizon), .integer(Int64(limit))])
            let horizon = rows.first?[0].int ?? 0, count = Int(rows.first?[1].int ?? 0)
            let bounded = [1, 2].allSatisfy { k in rows.lazy.filter { $0[3].int == Int64(k) }.count < limit }
            let changed = Array(Set(rows.compactMap { r in r[2].string.flatMap { r[3].int == 0 || cached.runs[$0] != nil ? $0 : nil } }))
            if bounded, let fresh = try update(cached, c, changed: changed, horizon: horizon, count: count) {
                if !changed.isEmpty || horizon != cached.horizon { searchCache.put(experiment, fresh) }
                return fresh
            }
        }
        // In full: the horizon first (an earlier horizon only makes the next read take a little more).
        let horizon = try c.rows("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").first?.first?.int ?? 0
        var runs: [String: SearchCache.Entry] = [:]
        for r in try runRows(c, where: "experiment_id = ?", [.integer(experiment)]) {
            runs[r.run.info.runID] = SearchCache.Entry(run: r.run, latest: r.latest)
        }
        let read = SearchCache.Experiment(horizon: horizon, runs: runs, used: 0)
        searchCache.put(experiment, read)
        return read
    }

    /// `cached` with the runs of `changed` read again as of `horizon`; `nil` when the runs then held are not the
    /// experiment's `count` (runs removed for good: read it in full).
    private func update(_ cached: SearchCache.Experiment, _ c: PostgresDatabase.Connection, changed: [String], horizon: Int64,
                        count: Int) throws -> SearchCache.Experiment? {
        var fresh = cached
        for start in stride(from: 0, to: changed.count, by: 500) {
            let chunk = changed[start..<min(changed.count, start + 500)]
            for id in chunk {
                fresh.runs[id] = nil  // removed for good unless read again below
                for k in fresh.columns.keys { fresh.columns[k]![id] = nil }
            }
            for r in try runRows(c, where: "run_uuid IN (\(sqlMarks(chunk.count)))", chunk.map(SQLValue.text)) {
                fresh.runs[r.run.info.runID] = SearchCache.Entry(run: r.run, latest: r.latest)
            }
        }
        guard fresh.runs.count == count else { return nil }
        fresh.horizon = horizon
        return fresh
    }

    /// An experiment's runs in `view` and, for each of `keyIDs`, their values aligned with them: decoded values
    /// from the cache, the others decoded now (each row once for all the keys) and handed back to the cache.
    func candidates(_ e: SearchCache.Experiment, experiment: Int64, view: ViewType, keyIDs: [Int64?]) throws -> (runs: [Run], metrics: [[Double?]]) {
        var runs: [Run] = [], metrics = keyIDs.map { _ in [Double?]() }
        var decoded: [Int64: [String: Double?]] = [:]
        runs.reserveCapacity(e.runs.count)
        try withCodec { codec in
            for (id, entry) in e.runs where view.includes(entry.run.info.lifecycleStage) {
                runs.append(entry.run)
                guard !keyIDs.isEmpty else { continue }
                var row: LatestRows.Columns?, read = false
                for (k, key) in keyIDs.enumerated() {
                    guard let key else { metrics[k].append(nil); continue }
                    if let v = e.columns[key]?[id] { metrics[k].append(v); continue }
                    if !read, !entry.latest.isEmpty { row = try LatestRows.columns(entry.latest, runID: id, codec: codec) }
                    read = true
                    let v = row?.value(of: key)
                    metrics[k].append(v)
                    decoded[key, default: [:]][id] = .some(v)
                }
            }
        }
        if !decoded.isEmpty { searchCache.addColumns(experiment, horizon: e.horizon, decoded) }
        return (runs, metrics)
    }
}

extension PostgresMetadataStore {
    /// The page's runs from the search cache the search was just answered from (as fresh as that answer, or fresher
    /// when another search has brought the cache up to date since), their latest rows decoded; runs the cache no
    /// longer holds are read again.
    public func searchPage(_ candidates: [Run]) throws -> [Run] {
        var found: [String: Run] = [:]
        var missing: [String] = []
        var cached: [Int64: SearchCache.Experiment] = [:]
        for r in candidates {
            let e = Int64(r.info.experimentID) ?? -1
            if cached[e] == nil, let x = searchCache.get(e) { cached[e] = x }
            guard let entry = cached[e]?.runs[r.info.runID] else {
                missing.append(r.info.runID)
                continue
            }
            var run = entry.run
            if !entry.latest.isEmpty { run.metrics = try decodeLatest(entry.latest, runID: run.info.runID).metrics }
            found[run.info.runID] = run
        }
        for r in try runs(ids: missing) { found[r.info.runID] = r }
        return candidates.compactMap { found[$0.info.runID] }
    }
}
