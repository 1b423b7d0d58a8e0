/// Proleptic Gregorian calendar arithmetic in UTC on milliseconds since the epoch (Howard Hinnant's algorithms): what
/// the API's timestamp forms (protobuf's RFC 3339, Python's `isoformat()`) are written from and read into.
public enum CivilDate {
    /// `a / b` rounded toward negative infinity; `b` must be positive.
    public static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        precondition(b > 0, "a positive divisor")
        return a >= 0 ? a / b : (a + 1) / b - 1
    }

    /// Days since 1970-01-01 of a civil date.
    public static func days(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400), yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        return era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    }

    /// The civil date (year, month, day) of a day since 1970-01-01.
    public static func civil(_ z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097), doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// A time's fields in UTC: year, month, day, hour, minute, second and millisecond.
    public static func fields(ms: Int64) -> (year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, milli: Int64) {
        let secs = floorDiv(ms, 1000), days = floorDiv(secs, 86_400), rest = secs - days * 86_400
        let (y, m, d) = civil(days)
        return (y, m, d, rest / 3600, rest / 60 % 60, rest % 60, ms - secs * 1000)
    }

    /// `v` in decimal, zero-padded to `n` digits.
    public static func pad(_ v: Int64, _ n: Int) -> String {
        let s = String(v)
        return s.count >= n ? s : String(repeating: "0", count: n - s.count) + s
    }
}
