import TallyStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension TrackingService {
    /// A scoreboard: for every selected key × run the latest (or best, or at-a-step) value, ranks per key, deltas to a
    /// baseline run and per-group means. Latest values come from the runs' latest-metric records; `best` and `step`
    /// read the series.
    /// The experiment or every listed run must be readable by `scope` (403 otherwise).
    public func scoreboard(_ q: ScoreboardQuery, scope: Grants = .unrestricted) throws -> Scoreboard {
        if let e = q.experimentID, !scope.isUnrestricted { try scope.require(.read, on: .experiment(e)) }
        for id in q.runIDs { try requireRead(run: id, scope) }
        let runs = try scoreboardRuns(q)
        let select = try Self.keySelector(q)
        let lower = (q.lowerIsBetter ?? ScoreboardQuery.defaultLowerIsBetter).map { Array($0.lowercased().utf8) }.filter { !$0.isEmpty }
        if let d = q.groupDepth, d < 1 { throw TrackingError.invalid("group_depth must be at least 1 (got \(d))") }
        var baselineIndex: Int?
        if let b = q.baselineRunID {
            guard let i = runs.firstIndex(where: { $0.runID == b }) else {
                throw TrackingError.invalid("baseline_run_id '\(b)' is not one of the runs on the scoreboard")
            }
            baselineIndex = i
        }
        // The runs' latest values as one key-major table, straight from their compact rows: no per-run metric
        // arrays, no key strings compared per cell. Rows are then built in parallel chunks of keys.
        let runIDs = runs.map(\.runID)
        if q.value != .latest { for id in runIDs { try readable(id) } }  // once per run, not per cell
        let table = try metadata.latestTable(runIDs: runIDs)
        let selected = table.keys.indices.filter { select(table.keys[$0]) }
        let chunks = Parallel.chunks(selected.count, minimum: 256)
        let baseline = baselineIndex
        let rows = try Parallel.map(chunks) { range in
            try self.scoreboardRows(table, keys: selected[range], runIDs: runIDs, q, lower: lower, baseline: baseline)
        }.flatMap { $0 }
        return Scoreboard(runs: runs, rows: rows, groups: Self.groups(rows, runs: runs.count), baselineIndex: baselineIndex)
    }

    /// The rows of some keys (indices into `table.keys`, ascending).
    func scoreboardRows(_ table: LatestTable, keys: ArraySlice<Int>, runIDs: [String], _ q: ScoreboardQuery, lower: [[UInt8]],
                        baseline: Int?) throws -> [ScoreboardRow] {
        let n = runIDs.count
        var rows: [ScoreboardRow] = []
        rows.reserveCapacity(keys.count)
        var previousGroup: (key: String, group: String)?
        var ranking = RankBuffer(capacity: n)
        for k in keys {
            let key = table.keys[k]
            let lowerIsBetter = Self.containsAny(key, lower)
            var values = [Double?](repeating: nil, count: n), steps = [Int64?](repeating: nil, count: n)
            for i in 0..<n {
                guard let l = table.cell(k, i) else { continue }
                if case .latest = q.value {
                    values[i] = l.value
                    steps[i] = l.step
                } else if let p = try scoreboardPoint(q.value, run: runIDs[i], key: key, lowerIsBetter: lowerIsBetter) {
                    values[i] = p.value
                    steps[i] = p.step
                }
            }
            var deltas: [Double?] = []
            if let b = baseline {
                deltas = [Double?](repeating: nil, count: n)
                if let base = values[b] { for i in 0..<n { if let v = values[i] { deltas[i] = v - base } } }
            }
            // Keys in bytewise order mostly come group by group: reuse the previous key's group when it is the same.
            let group: String
            if let p = previousGroup, q.groupDepth == nil, Self.sameGroup(key, p.key) {
                group = p.group
            } else {
                group = Self.group(of: key, depth: q.groupDepth)
            }
            previousGroup = (key, group)
            rows.append(ScoreboardRow(key: key, group: group, lowerIsBetter: lowerIsBetter, values: values, steps: steps,
                                      ranks: ranking.ranks(values, lowerIsBetter: lowerIsBetter), baselineDeltas: deltas))
        }
        return rows
    }

    /// Whether two keys have the same group (everything before the last `/`), comparing bytes only.
    static func sameGroup(_ a: String, _ b: String) -> Bool {
        let slash = UInt8(ascii: "/")
        let x = a.utf8, y = b.utf8
        let i = x.lastIndex(of: slash).map { x.distance(from: x.startIndex, to: $0) } ?? 0
        let j = y.lastIndex(of: slash).map { y.distance(from: y.startIndex, to: $0) } ?? 0
        return i == j && x.prefix(i).elementsEqual(y.prefix(j))
    }

    /// The runs of a query, in column order: as listed (each once), or the experiment's matching active runs.
    func scoreboardRuns(_ q: ScoreboardQuery) throws -> [RunInfo] {
        if let e = q.experimentID {
            guard q.runIDs.isEmpty else { throw TrackingError.invalid("Give run_ids or experiment_id, not both") }
            let runs = try orderedRuns(experimentIDs: [e], filter: q.filter, view: .activeOnly, orderBy: []).prefix(ScoreboardQuery.maxRuns)
            guard !runs.isEmpty else { throw TrackingError.invalid("No run of experiment \(e) matches the filter") }
            return runs.map(\.info)
        }
        guard q.filter == nil else { throw TrackingError.invalid("filter needs experiment_id") }
        guard !q.runIDs.isEmpty, q.runIDs.count <= ScoreboardQuery.maxRuns else {
            throw TrackingError.invalid("run_ids must list 1 to \(ScoreboardQuery.maxRuns) runs (got \(q.runIDs.count))")
        }
        var seen = Set<String>()
        return try q.runIDs.filter { seen.insert($0).inserted }.map { id in
            guard let info = try metadata.runInfo(id: id) else { throw TrackingError.notFound("Run with id=\(id) not found") }
            return info
        }
    }

    /// The key filter: prefixes, a regular expression, or everything.
    static func keySelector(_ q: ScoreboardQuery) throws -> (String) -> Bool {
        if let pattern = q.keyRegex {
            guard q.keyPrefixes.isEmpty else { throw TrackingError.invalid("Give key_prefixes or key_regex, not both") }
            guard pattern.count <= ScoreboardQuery.maxRegexLength else {
                throw TrackingError.invalid("key_regex is longer than \(ScoreboardQuery.maxRegexLength) characters")
            }
            let regex: Regex<AnyRegexOutput>
            do { regex = try Regex(pattern) } catch { throw TrackingError.invalid("Invalid key_regex '\(pattern)': \(error)") }
            return { key in (try? regex.firstMatch(in: key)) != nil }
        }
        let prefixes = q.keyPrefixes
        return prefixes.isEmpty ? { _ in true } : { key in prefixes.contains { key.hasPrefix($0) } }
    }

    /// The point a scoreboard shows for one run's key when it is not the latest (which the latest table has).
    func scoreboardPoint(_ v: ScoreboardValue, run: String, key: String, lowerIsBetter: Bool) throws -> MetricPoint? {
        switch v {
        case .latest:
            return nil
        case .step(let s):
            let points = try metrics.read(run: run, key: key, steps: s...s).points
            return points.max { LatestRule.isLater($1, than: $0) }
        case .best:
            var best: MetricPoint?
            try metrics.scan(run: run, key: key) { c in
                for i in 0..<c.count where !c.values[i].isNaN {
                    let value = c.values[i]
                    if let b = best, lowerIsBetter ? value >= b.value : value <= b.value { continue }
                    best = MetricPoint(step: c.steps[i], timestamp: c.timestamps[i], value: value)
                }
            }
            return best
        }
    }

    /// Whether `key`, lowercased, contains one of `patterns` (lowercased UTF-8): a byte search, since a UTF-8 byte
    /// match is a code point match.
    static func containsAny(_ key: String, _ patterns: [[UInt8]]) -> Bool {
        guard !patterns.isEmpty else { return false }
        // ASCII keys (the usual ones) are lowercased while comparing, without a lowercased copy.
        var key = key
        if let ascii = key.withUTF8({ k -> Bool? in
            guard !k.contains(where: { $0 >= 0x80 }) else { return nil }
            let lower = { (b: UInt8) in b &- 0x41 < 26 ? b | 0x20 : b }
            return patterns.contains { p in
                guard p.count <= k.count else { return false }
                return (0...(k.count - p.count)).contains { s in p.indices.allSatisfy { lower(k[s &+ $0]) == p[$0] } }
            }
        }) {
            return ascii
        }
        var lowered = key.lowercased()
        return lowered.withUTF8 { k in
            patterns.contains { p in
                guard p.count <= k.count else { return false }
                return p.withUnsafeBufferPointer { pb in
                    (0...(k.count - p.count)).contains { memcmp(k.baseAddress! + $0, pb.baseAddress!, p.count) == 0 }
                }
            }
        }
    }

    /// A key's group: everything before its last `/` (`""` without one), or its first `depth` parts.
    static func group(of key: String, depth: Int?) -> String {
        let slash = UInt8(ascii: "/")
        guard let depth else {
            guard let last = key.utf8.lastIndex(of: slash) else { return "" }
            return String(key[..<last])
        }
        // The first `depth` parts, never the last part (the metric itself).
        var seen = 0
        var end = key.startIndex
        for i in key.utf8.indices where key.utf8[i] == slash {
            seen += 1
            end = i
            if seen == depth { break }
        }
        return seen == 0 ? "" : String(key[..<end])
    }

    /// Per group and run: mean and count of the finite values (none for a group of one key: its row has them).
    static func groups(_ rows: [ScoreboardRow], runs: Int) -> [ScoreboardGroup] {
        // First each row's group number (one lookup per change of group), then sums and counts in flat arrays
        // (group-major by run), filled through raw pointers.
        var index: [String: Int] = [:]
        var names: [String] = [], keys: [Int] = []
        var of = [Int](repeating: 0, count: rows.count)
        var last = -1
        for (r, row) in rows.enumerated() {
            if last < 0 || names[last] != row.group {  // rows of one group mostly follow each other (one shared string)
                if let i = index[row.group] {
                    last = i
                } else {
                    last = names.count
                    index[row.group] = last
                    names.append(row.group)
                    keys.append(0)
                }
            }
            of[r] = last
            keys[last] += 1
        }
        var sums = [Double](repeating: 0, count: names.count * runs), counts = [Int](repeating: 0, count: names.count * runs)
        sums.withUnsafeMutableBufferPointer { sums in
            counts.withUnsafeMutableBufferPointer { counts in
                for (r, row) in rows.enumerated() where keys[of[r]] > 1 {
                    let base = of[r] &* runs
                    row.values.withUnsafeBufferPointer { values in
                        for i in values.indices {
                            guard let v = values[i], v.isFinite else { continue }
                            sums[base &+ i] += v
                            counts[base &+ i] &+= 1
                        }
                    }
                }
            }
        }
        return names.indices.sorted { binaryLess(names[$0], names[$1]) }.map { g in
            guard keys[g] > 1 else { return ScoreboardGroup(group: names[g], keys: 1, means: [], counts: []) }
            let c = Array(counts[(g * runs)..<((g + 1) * runs)])
            let means = (0..<runs).map { i in c[i] > 0 ? sums[g * runs + i] / Double(c[i]) : nil }
            return ScoreboardGroup(group: names[g], keys: keys[g], means: means, counts: c)
        }
    }
}

extension Array where Element == Metric {
    /// Whether the metrics are in bytewise key order (each key once).
    var isSortedByKey: Bool { indices.dropFirst().allSatisfy { KeyOrder.compare(self[$0 - 1].key, self[$0].key) < 0 } }
}

/// Ranks one row at a time in reusable storage: each value's order key (its bits, flipped so that unsigned order is
/// best-first order) with the column in its low 10 bits, sorted as plain `UInt64`s by a small quicksort (the standard
/// library's generic stable sort of (value, column) pairs cost ~75 ns per element, most of a 100 × 2,000
/// scoreboard's computation). The 10 bits taken from the key are given back where two keys differ only there.
struct RankBuffer {
    private var packed: [UInt64] = []

    /// Bits of a packed key holding the column: enough for ``ScoreboardQuery/maxRuns``.
    static let columnBits = 10
    static let columnMask: UInt64 = (1 << columnBits) - 1

    init(capacity: Int) { packed.reserveCapacity(capacity) }

    /// Competition ranks ("1224"): 1 is the best value; NaN and missing values have none.
    mutating func ranks(_ values: [Double?], lowerIsBetter: Bool) -> [Int?] {
        precondition(values.count <= 1 << Self.columnBits, "a scoreboard ranks at most \(1 << Self.columnBits) runs")
        packed.removeAll(keepingCapacity: true)
        for (i, v) in values.enumerated() {
            if let v, !v.isNaN { packed.append(Self.orderKey(v, lowerIsBetter) & ~Self.columnMask | UInt64(i)) }
        }
        var out = [Int?](repeating: nil, count: values.count)
        packed.withUnsafeMutableBufferPointer { b in
            Self.sort(b, 0, b.count)
            let keys = b  // the same memory, for the closure
            let full = { (p: Int) in Self.orderKey(values[Int(keys[p] & Self.columnMask)]!, lowerIsBetter) }
            var p = 0
            while p < b.count {
                // Keys equal but for the column bits: ordered by their whole key (mostly equal values, one column).
                var q = p + 1
                while q < b.count, b[q] | Self.columnMask == b[p] | Self.columnMask { q += 1 }
                if q - p > 1 {
                    for i in (p + 1)..<q {
                        let x = b[i], key = full(i)
                        var j = i
                        while j > p, key < full(j - 1) {
                            b[j] = b[j - 1]
                            j -= 1
                        }
                        b[j] = x
                    }
                }
                p = q
            }
            var rank = 0, previous: UInt64 = 0
            for p in 0..<b.count {
                let key = full(p)
                if p == 0 || key != previous { rank = p + 1 }
                previous = key
                out[Int(b[p] & Self.columnMask)] = rank
            }
        }
        return out
    }

    /// A value's order key: unsigned order is best-first order (ascending values when lower is better, descending
    /// otherwise); -0 and +0 share a key. Not for NaN.
    @inline(__always)
    static func orderKey(_ v: Double, _ lowerIsBetter: Bool) -> UInt64 {
        let bits = ((lowerIsBetter ? v : -v) + 0.0).bitPattern  // + 0.0 turns -0 into +0
        return bits >> 63 == 1 ? ~bits : bits | (1 << 63)
    }

    /// Sorts `b[lo..<hi]`: quicksort with a median-of-three pivot, insertion sort below 16 elements.
    static func sort(_ b: UnsafeMutableBufferPointer<UInt64>, _ lo: Int, _ hi: Int) {
        var lo = lo, hi = hi
        while hi - lo > 16 {
            let mid = lo + (hi - lo) / 2
            if b[mid] < b[lo] { b.swapAt(mid, lo) }
            if b[hi - 1] < b[lo] { b.swapAt(hi - 1, lo) }
            if b[hi - 1] < b[mid] { b.swapAt(hi - 1, mid) }
            let pivot = b[mid]
            var i = lo, j = hi - 1
            while i <= j {
                while b[i] < pivot { i += 1 }
                while pivot < b[j] { j -= 1 }
                if i <= j {
                    b.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            // Recurse into the smaller side, loop on the larger (stack depth stays logarithmic).
            if j + 1 - lo < hi - i {
                sort(b, lo, j + 1)
                lo = i
            } else {
                sort(b, i, hi)
                hi = j + 1
            }
        }
        guard hi - lo > 1 else { return }
        for i in (lo + 1)..<hi {
            let x = b[i]
            var j = i
            while j > lo, x < b[j - 1] {
                b[j] = b[j - 1]
                j -= 1
            }
            b[j] = x
        }
    }
}
