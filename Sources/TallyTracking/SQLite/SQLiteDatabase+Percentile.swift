import CSQLite3

/// `tally_percentile(value, fraction)`: the aggregate PostgreSQL calls `percentile_cont`, which SQLite lacks (MLflow registers
/// one of its own for the same reason). Each group's values are kept in a ``PercentileGroup`` that the group's
/// aggregate context points to, sorted and interpolated at its end (``TraceMetricsRenderer/percentile(_:fraction:)``).
extension SQLiteDatabase {
    /// The function's name in SQL.
    static let percentileFunction = "tally_percentile"

    /// Registers the aggregate on the connection `db`.
    static func addPercentile(_ db: OpaquePointer) throws {
        let rc = sqlite3_create_function_v2(db, percentileFunction, 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil, nil,
                                            { percentileStep($0, $1, $2) }, { percentileFinal($0) }, nil)
        guard rc == SQLITE_OK else { throw SQLiteError(code: rc, message: "cannot register \(percentileFunction)") }
    }
}

/// One group's values and the percentile asked (its fraction, 0–1, the first row's).
final class PercentileGroup {
    var values: [Double] = []
    let fraction: Double

    init(fraction: Double) { self.fraction = fraction }
}

/// The group's slot in SQLite's aggregate context: a retained ``PercentileGroup`` (`nil` before its first value).
private func percentileSlot(_ ctx: OpaquePointer?, create: Bool) -> UnsafeMutablePointer<UnsafeMutableRawPointer?>? {
    sqlite3_aggregate_context(ctx, create ? Int32(MemoryLayout<UnsafeMutableRawPointer?>.size) : 0)?
        .assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
}

private func percentileStep(_ ctx: OpaquePointer?, _ argc: Int32, _ argv: UnsafeMutablePointer<OpaquePointer?>?) {
    guard let argv, argc == 2, sqlite3_value_type(argv[0]) != SQLITE_NULL else { return }  // NULLs are not values, as in SQL's aggregates
    guard let slot = percentileSlot(ctx, create: true) else { sqlite3_result_error_nomem(ctx); return }
    let group: PercentileGroup
    if let raw = slot.pointee {
        group = Unmanaged<PercentileGroup>.fromOpaque(raw).takeUnretainedValue()
    } else {
        group = PercentileGroup(fraction: sqlite3_value_double(argv[1]))
        slot.pointee = Unmanaged.passRetained(group).toOpaque()
    }
    group.values.append(sqlite3_value_double(argv[0]))
}

private func percentileFinal(_ ctx: OpaquePointer?) {
    guard let slot = percentileSlot(ctx, create: false), let raw = slot.pointee else { sqlite3_result_null(ctx); return }
    slot.pointee = nil
    let group = Unmanaged<PercentileGroup>.fromOpaque(raw).takeRetainedValue()  // released here, whatever ends the query
    group.values.sort()
    sqlite3_result_double(ctx, TraceMetricsRenderer.percentile(group.values, fraction: group.fraction))
}
