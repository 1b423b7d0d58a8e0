import Foundation

/// MLflow's validation limits and messages (`mlflow/utils/validation.py`, summarised in the reference §5).
public enum Validation {
    /// Metrics per `log-batch`.
    public static let maxMetricsPerBatch = 1000
    /// Params per `log-batch`.
    public static let maxParamsPerBatch = 100
    /// Tags per `log-batch`.
    public static let maxTagsPerBatch = 100
    /// Metrics + params + tags per `log-batch`.
    public static let maxEntitiesPerBatch = 1000
    /// Metric, param and run-tag keys.
    public static let maxKeyLength = 250
    /// Param values (longer ones are truncated).
    public static let maxParamValueLength = 6000
    /// Run-tag values (longer ones are truncated).
    public static let maxTagValueLength = 8000
    /// Experiment-tag keys.
    public static let maxExperimentTagKeyLength = 250
    /// Experiment-tag values (not truncated).
    public static let maxExperimentTagValueLength = 20_000
    /// Experiment names.
    public static let maxExperimentNameLength = 500
    /// Search `max_results`.
    public static let maxSearchResults = 50_000

    /// A search's page size checked as MLflow's `_validate_max_results_param` checks it: 1 to ``maxSearchResults``.
    public static func searchPageSize(_ maxResults: Int64) throws -> Int {
        guard maxResults >= 1 else {
            throw TrackingError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied. It must be a positive integer")
        }
        guard maxResults <= maxSearchResults else {
            throw TrackingError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied. It must be at most \(maxSearchResults)")
        }
        return Int(maxResults)
    }

    /// `Missing value for required parameter '<name>'. …`
    public static func missing(_ name: String) -> TrackingError {
        .invalid("Missing value for required parameter '\(name)'. See the API docs for more information about request parameters.")
    }

    /// MLflow's message for a field of the wrong type: `repr` and `type` are Python's renderings of the value sent.
    public static func invalidType(_ name: String, repr: String, type: String) -> TrackingError {
        .invalid("Invalid value \(repr) for parameter '\(name)' supplied:  Hint: Value was of type '\(type)'. "
            + "See the API docs for more information about request parameters.")
    }

    /// JSON-style rendering of a value inside `Invalid value … for parameter …` messages.
    static func quoted(_ s: String) -> String { JSONText.quote(s) }

    /// Checks a metric, param or tag key: allowed characters, no path tricks, length.
    /// - Parameter entity: `Metric`, `Param` or `Tag`, for the length message.
    public static func key(_ key: String, entity: String) throws {
        guard !key.isEmpty else { throw missing("key") }
        if isPlainASCIIName(key) {  // ASCII: one code point per byte
            if key.utf8.count > maxKeyLength { try checkLength(key, entity: entity) }
            return
        }
        try fullKeyCheck(key, entity: entity)
    }

    /// MLflow's character and path rules for a key, character by character (``isPlainASCIIName(_:)`` is the fast
    /// path for keys this surely accepts).
    /// Whether `key` is in Unicode normalization form C, code point for code point.
    static func isNFC(_ key: String) -> Bool {
        key.utf8.allSatisfy { $0 < 0x80 } || key.precomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual(key.unicodeScalars)
    }

    static func fullKeyCheck(_ key: String, entity: String) throws {
        for c in key.unicodeScalars {
            let ok = c.properties.isAlphabetic || c.properties.numericType != nil || "_-. :/".unicodeScalars.contains(c)
            guard ok else {
                throw TrackingError.invalid("Invalid value \(quoted(key)) for parameter 'key' supplied: Names may only contain alphanumerics, "
                    + "underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).")
            }
        }
        // Swift compares strings by canonical equivalence: "K" and the Kelvin sign (U+212A), or "é" and "e" + U+0301,
        // would be one key in every dictionary of the service and the store while MLflow and the databases keep two.
        // A key only in its normalization form C never equals another such key unless they are the same code points.
        guard isNFC(key) else {
            let composed = key.precomposedStringWithCanonicalMapping
            throw TrackingError.invalid("Invalid value \(quoted(key)) for parameter 'key' supplied: Names must be in Unicode normalization form "
                + "C; this one is written \(quoted(composed)) in it (Tally cannot keep canonically equivalent names apart)")
        }
        let normalized = normalizePath(key)
        if !normalized.utf8.elementsEqual(key.utf8) || key == "." || key.hasPrefix("..") || key.hasPrefix("/") {
            throw TrackingError.invalid("Invalid value \(quoted(key)) for parameter 'key' supplied: Names may be treated as files in certain "
                + "cases, and must not resolve to other names when treated as such. This name would resolve to '\(normalized)'")
        }
        try checkLength(key, entity: entity)
    }

    static func checkLength(_ key: String, entity: String) throws {
        let length = key.unicodeScalars.count  // MLflow counts code points, not grapheme clusters
        if length > maxKeyLength {
            throw TrackingError.invalid("\(entity) '\(String(key.unicodeScalars.prefix(maxKeyLength)))' had length \(length), which exceeded length limit of \(maxKeyLength)")
        }
    }

    /// The common case, decided from bytes: ASCII letters, digits, `_-.:`, space and `/` only, not starting with
    /// `.` (so neither `.` nor `..`), and `/`-separated parts that are neither empty nor `.` or `..` (so a path
    /// normalisation changes nothing: `suite/task_1/acc` passes, `a//b`, `a/./b`, `a/` and `/a` do not). Such a
    /// key passes the character and path rules; others take the full check.
    static func isPlainASCIIName(_ key: String) -> Bool {
        var key = key
        return key.withUTF8 { b in
            guard let first = b.first, first != UInt8(ascii: "."), first != UInt8(ascii: "/") else { return false }
            var partStart = 0
            for (i, c) in b.enumerated() {
                switch c {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                     UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: " "), UInt8(ascii: ":"): continue
                case UInt8(ascii: "/"):
                    guard Self.isPlainPart(b, partStart..<i) else { return false }
                    partStart = i + 1
                default: return false
                }
            }
            return Self.isPlainPart(b, partStart..<b.count)
        }
    }

    /// A path part a normalisation keeps: not empty, not `.`, not `..`.
    private static func isPlainPart(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Bool {
        let dot = UInt8(ascii: ".")
        switch r.count {
        case 0: return false
        case 1: return b[r.lowerBound] != dot
        case 2: return !(b[r.lowerBound] == dot && b[r.lowerBound + 1] == dot)
        default: return true
        }
    }

    /// `posixpath.normpath`.
    static func normalizePath(_ p: String) -> String {
        guard !p.isEmpty else { return "." }
        let absolute = p.hasPrefix("/")
        var parts: [Substring] = []
        for comp in p.split(separator: "/", omittingEmptySubsequences: true) {
            if comp == "." { continue }
            if comp == ".." {
                if let last = parts.last, last != ".." { parts.removeLast() } else if !absolute { parts.append(comp) }
                continue
            }
            parts.append(comp)
        }
        let joined = parts.joined(separator: "/")
        if absolute { return (p.hasPrefix("//") && !p.hasPrefix("///") ? "//" : "/") + joined }
        return joined.isEmpty ? "." : joined
    }

    /// MLflow's error for a metric with a negative timestamp (timestamps must be ≥ 0).
    static func negativeTimestamp(key: String, value: Double, timestamp: Int64) -> TrackingError {
        TrackingError.invalid("Invalid value \(timestamp) for parameter 'timestamp' supplied: metric '\(key)' (value=\(pythonFloat(value))). "
            + "Timestamp must be a nonnegative long (64-bit integer) ")
    }

    /// Python's `repr(float)` for messages.
    static func pythonFloat(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        return v == v.rounded() && abs(v) < 1e16 ? String(format1: v) : "\(v)"
    }

    /// Schemes whose URIs name a host the server would connect to (MLflow refuses them as artifact locations).
    static let hostAddressedSchemes: Set<String> = ["ftp", "sftp", "hdfs", "viewfs", "http", "https", "mlflow-artifacts", "r2", "b2", "abfss"]
    /// Schemes whose last path segment may carry `;params` (Python's `urllib.parse.uses_params`).
    static let paramSchemes: Set<String> = ["", "ftp", "hdfs", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtspu", "sip", "sips",
                                            "mms", "sftp", "tel"]
    /// Longest artifact location (MLflow's `MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH` default).
    public static let maxArtifactLocationLength = 2048

    /// MLflow's checks of an experiment's `artifact_location`: no fragment or `;params`, no `..` in the query, no
    /// scheme that names another host, not a `runs:` URI, at most 2,048 characters.
    /// MLflow's refusal of a URI whose scheme makes a server connect to the host it names (`ftp`, `http`, `hdfs`, …;
    /// `mlflow-artifacts` only with a host), for a request field such as `artifact_location` or a version's `source`.
    static func refuseHostAddressed(_ uri: String, field: String) throws {
        let scheme = TrackingService.uriScheme(uri) ?? ""
        let hasHost = uri.dropFirst(scheme.count + 1).hasPrefix("//") && !uri.dropFirst(scheme.count + 3).hasPrefix("/")
        if hostAddressedSchemes.contains(scheme), scheme != "mlflow-artifacts" || hasHost {
            throw TrackingError.invalid("'\(field)' cannot use the '\(scheme)' scheme: the '\(scheme)' scheme addresses a host other than "
                + "the tracking server's configured artifact storage, so the server would connect to the host named in the URI. Set the "
                + "MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES environment variable on the server to allow it.")
        }
    }

    public static func artifactLocation(_ location: String) throws {
        let scheme = TrackingService.uriScheme(location) ?? ""
        let beforeQuery = location.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let lastSegment = beforeQuery.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
        if location.contains("#") || (paramSchemes.contains(scheme) && lastSegment.contains(";")) {
            throw TrackingError.invalid("'artifact_location' URL can't include fragments or params.")
        }
        if let q = location.firstIndex(of: "?") {
            var query = String(location[location.index(after: q)...])
            for _ in 0..<10 {
                let next = PercentDecoding.decode(Substring(query), plusIsSpace: false)
                if next == query { break }
                query = next
            }
            if query.contains("..") { throw TrackingError.invalid("Invalid query string") }
        }
        try refuseHostAddressed(location, field: "artifact_location")
        if location.hasPrefix("runs:") { throw TrackingError.invalid("Artifact location cannot be a runs:/ URI. Given: '\(location)'") }
        guard location.count <= maxArtifactLocationLength else {
            throw TrackingError.invalid("Invalid artifact path length. The length of the artifact path cannot be greater than "
                + "\(maxArtifactLocationLength) characters. To configure this limit, please set the MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH "
                + "environment variable.")
        }
    }

    /// Checks an experiment name (not empty — spaces alone are a name to MLflow —, ≤ 500 characters).
    public static func experimentName(_ name: String) throws {
        guard !name.isEmpty else {
            throw TrackingError.invalid("Invalid experiment name: '\(name)'")
        }
        guard name.unicodeScalars.count <= maxExperimentNameLength else {
            throw TrackingError.invalid("Invalid experiment name: '\(name.prefix(50))...'. Experiment name exceeds the maximum length of "
                + "\(maxExperimentNameLength) characters")
        }
    }

    /// Parses an experiment id: a decimal integer as Python's `int` reads it (`" 5"`, `"+5"` and `"0_5"` are 5).
    public static func experimentID(_ id: String) throws -> Int64 {
        guard let v = PythonNumber.int(id) else {
            throw TrackingError.invalid("Invalid experiment ID '\(id)'. Experiment ID must be a valid integer.")
        }
        return v
    }

    /// Checks a run id's shape (`^[a-zA-Z0-9][\w\-]{0,255}$`).
    public static func runID(_ id: String) throws {
        // ASCII letters and digits, then also `_` and `-`: bytes suffice (any other byte, ASCII or not, fails).
        let utf8 = id.utf8
        let ok = !utf8.isEmpty && utf8.count <= 256
            && utf8.enumerated().allSatisfy { i, c in
                (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || (i > 0 && (c == 0x5F || c == 0x2D))
            }
        guard ok else { throw TrackingError.invalid("Invalid value \(quoted(id)) for parameter 'run_id' supplied.") }
    }
}

extension String {
    /// A double with one decimal, as Python prints whole floats (`1.0`).
    init(format1 v: Double) { self = "\(Int64(v)).0" }
}

/// JSON string literals, shared by error messages here and by the server's responses.
public enum JSONText {
    /// `s` as a JSON string literal (quotes, backslashes and control characters escaped).
    public static func quote(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        write(s) { out.append(contentsOf: $0) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Writes `s` as a JSON string literal, in pieces: runs of bytes that need no escape and the escapes between
    /// them (`\"`, `\\`, `\n`, `\r`, `\t`, `\u00xx` for other control characters; everything else, UTF-8 included,
    /// as is). The one escaping rule of every JSON writer.
    public static func write(_ s: String, _ emit: (UnsafeRawBufferPointer) -> Void) {
        var s = s
        s.withUTF8 { u in
            withUnsafeBytes(of: UInt8(ascii: "\"")) { emit($0) }
            var start = 0
            for i in 0..<u.count {
                let c = u[i]
                guard c == 0x22 || c == 0x5C || c < 0x20 else { continue }
                if i > start { emit(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(u)[start..<i])) }
                start = i + 1
                var e: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0x5C, 0, 0, 0, 0, 0)
                let n: Int
                switch c {
                case 0x22: e.1 = 0x22; n = 2
                case 0x5C: e.1 = 0x5C; n = 2
                case 0x0A: e.1 = UInt8(ascii: "n"); n = 2
                case 0x0D: e.1 = UInt8(ascii: "r"); n = 2
                case 0x09: e.1 = UInt8(ascii: "t"); n = 2
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    e = (0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)])
                    n = 6
                }
                withUnsafeBytes(of: e) { emit(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
            if u.count > start { emit(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(u)[start..<u.count])) }
            withUnsafeBytes(of: UInt8(ascii: "\"")) { emit($0) }
        }
    }
}

extension String {
    /// The first `n` code points (MLflow truncates by code point).
    func prefix(codePoints n: Int) -> String {
        unicodeScalars.count <= n ? self : String(String.UnicodeScalarView(unicodeScalars.prefix(n)))
    }
}
