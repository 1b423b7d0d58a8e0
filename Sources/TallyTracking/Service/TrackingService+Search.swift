/// A page of search results.
public struct SearchPage<Item: Sendable>: Sendable {
    /// The items.
    public var items: [Item]
    /// The token for the next page, `nil` on the last page.
    public var nextPageToken: String?
}

extension TrackingService {
    /// `runs/search`'s `max_results` when absent.
    public static let defaultRunSearchResults: Int64 = 1000

    /// MLflow's `runs/search`: filter, order (ties by `start_time DESC`, then `run_id ASC`), page.
    /// - Parameters:
    ///   - maxResults: 1...50,000 (MLflow's default is 1,000).
    ///   - scope: what the caller may read: experiments it may not are left out (never an error).
    public func searchRuns(experimentIDs: [String], filter: String? = nil, view: ViewType = .activeOnly, maxResults: Int64? = nil,
                           orderBy: [String] = [], pageToken: String? = nil, scope: Grants = .unrestricted) throws -> SearchPage<Run> {
        let maxResults = Int(clamping: maxResults ?? Self.defaultRunSearchResults)
        guard maxResults >= 1, maxResults <= Validation.maxSearchResults else {
            throw TrackingError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied: It must be between 1 and "
                + "\(Validation.maxSearchResults).")
        }
        let ordered = try orderedRuns(experimentIDs: experimentIDs.filter { scope.canRead(experiment: $0) }, filter: filter, view: view,
                                      orderBy: orderBy)
        let offset = try PageToken.decode(pageToken)
        let page = Self.page(ordered, offset: offset, maxResults: maxResults)
        // As MLflow answers a search: each run with the models it logged (one read for the page).
        var items = try metadata.searchPage(page.items)
        let outputs = try metadata.runOutputs(runIDs: items.map(\.info.runID))
        for i in items.indices { items[i].outputs = outputs[items[i].info.runID] ?? [] }
        return SearchPage(items: items, nextPageToken: page.nextPageToken)
    }

    /// The runs a search matches, in its order, *without* their latest values (``Run/metrics`` empty): the metric
    /// keys the filter and order name are read as columns, so no run's every metric is decoded.
    func orderedRuns(experimentIDs: [String], filter: String?, view: ViewType, orderBy: [String]) throws -> [Run] {
        let f = try SearchFilter(parsing: filter, kind: .runs)
        var keys = try OrderKey.parseList(orderBy, kind: .runs)
        guard !experimentIDs.isEmpty else { return [] }
        let ids = try experimentIDs.map(Validation.experimentID)
        if !keys.contains(where: { $0.entity == .attribute && $0.key == "start_time" }) {
            keys.append(OrderKey(entity: .attribute, key: "start_time", ascending: false))
        }
        keys.append(OrderKey(entity: .attribute, key: "run_id", ascending: true))
        // Runs without their metrics plus the values of the keys the filter and order name; only the page's runs are
        // then read whole.
        // Keys are told apart by their bytes, as MLflow's SQL does: a key not in NFC (the Kelvin sign) names no stored
        // series (only NFC keys are stored), not the canonically equivalent one Swift's == would find (`K`).
        var metricKeys = f.metricKeys
        for k in keys where k.entity == .metric && !metricKeys.contains(where: { ExactKey.sameBytes($0, k.key) }) { metricKeys.append(k.key) }
        metricKeys = metricKeys.filter(Validation.isNFC)
        let column = Dictionary(uniqueKeysWithValues: metricKeys.enumerated().map { (ExactKey($1), $0) })
        let c = try metadata.searchRuns(experimentIDs: ids, view: view, metricKeys: metricKeys)
        let latest = { (key: String, i: Int) -> Double? in column[ExactKey(key)].flatMap { c.metrics[$0][i] } }
        let matched = c.runs.indices.filter { i in f.matches(c.runs[i]) { latest($0, i) } }
        let values = matched.map { i in keys.map { $0.value(c.runs[i]) { latest($0, i) } } }
        let order = matched.indices.sorted { a, b in
            for (k, key) in keys.enumerated() {
                let c = SortValue.compare(values[a][k], values[b][k], ascending: key.ascending)
                if c != 0 { return c < 0 }
            }
            return false
        }
        return order.map { c.runs[matched[$0]] }
    }

    /// MLflow's `experiments/search`: filter on name, id, times and tags; order by name, id or times
    /// (default `creation_time DESC, experiment_id ASC`). Experiments `scope` may not read are left out, before paging.
    public func searchExperiments(filter: String? = nil, view: ViewType = .activeOnly, maxResults: Int64? = nil, orderBy: [String] = [],
                                  pageToken: String? = nil, scope: Grants = .unrestricted) throws -> SearchPage<Experiment> {
        // MLflow's SearchExperiments has no default for max_results: absent is 0, which MLflow refuses.
        let maxResults = try Validation.searchPageSize(maxResults ?? 0)
        let f = try SearchFilter(parsing: filter, kind: .experiments)
        var keys = try OrderKey.parseList(orderBy, kind: .experiments)
        let offset = try PageToken.decode(pageToken)
        if keys.isEmpty {
            keys = [OrderKey(entity: .attribute, key: "creation_time", ascending: false), OrderKey(entity: .attribute, key: "experiment_id", ascending: true)]
        } else if !keys.contains(where: { $0.key == "experiment_id" }) {
            keys.append(OrderKey(entity: .attribute, key: "experiment_id", ascending: false))
        }
        let matched = try metadata.experiments().filter { view.includes($0.lifecycleStage) && f.matches($0) && scope.canRead(experiment: $0.experimentID) }
        let sorted = matched.sorted { a, b in
            for key in keys {
                let c = SortValue.compare(key.value(a), key.value(b), ascending: key.ascending)
                if c != 0 { return c < 0 }
            }
            return false
        }
        return Self.page(sorted, offset: offset, maxResults: maxResults)
    }

    static func page<T>(_ all: [T], offset: Int, maxResults: Int) -> SearchPage<T> {
        let start = min(offset, all.count)
        let end = min(all.count, start + maxResults)
        return SearchPage(items: Array(all[start..<end]), nextPageToken: end < all.count ? PageToken.encode(offset: end) : nil)
    }
}
