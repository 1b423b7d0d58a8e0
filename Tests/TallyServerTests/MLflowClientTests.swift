import Testing
@testable import TallyServer
@testable import TallyTracking

/// The MLflow REST client's pure parts: query encoding, the reordering of a paged history, the reading of MLflow's
/// JSON (NaN and ±Infinity as strings, int64s as numbers or strings), and URL checks.
@Suite struct MLflowClientTests {
    /// Query values arrive as themselves: `+`, `&`, `=`, `%`, spaces, slashes and UTF-8 are percent-encoded.
    @Test func queryValuesArePercentEncoded() {
        #expect(MLflowHTTPClient.encode("a+b&c=d%e f/g") == "a%2Bb%26c%3Dd%25e%20f%2Fg")
        #expect(MLflowHTTPClient.encode("loss_1.-~") == "loss_1.-~")
        #expect(MLflowHTTPClient.encode("é") == "%C3%A9")
        #expect(MLflowHTTPClient.encodePath("dir/a b/c+d") == "dir/a%20b/c%2Bd")
    }

    /// MLflow pages a history by (timestamp, step, value): put back in step order, stably, so points sharing a step
    /// stay by timestamp then value, as its database and unpaged answers list them.
    @Test func pagedHistoryComesBackInStepOrder() {
        var steps: [Int64] = [5, 1, 7, 7, 1, Int64.min, Int64.max]
        var stamps: [Int64] = [1, 2, 3, 3, 4, 5, 6]
        var values: [Double] = [0.5, 1, 2, 3, .nan, -1, 9]
        MLflowRESTSource.stepOrder(&steps, &stamps, &values)
        #expect(steps == [Int64.min, 1, 1, 5, 7, 7, Int64.max])
        #expect(stamps == [5, 2, 4, 1, 3, 3, 6])
        #expect(values[0] == -1 && values[1] == 1 && values[2].isNaN && values[3] == 0.5 && values[4] == 2 && values[5] == 3 && values[6] == 9)
        // Already in order: untouched.
        var s: [Int64] = [1, 2, 2, 3], t: [Int64] = [9, 8, 7, 6], v: [Double] = [4, 3, 2, 1]
        MLflowRESTSource.stepOrder(&s, &t, &v)
        #expect(s == [1, 2, 2, 3] && t == [9, 8, 7, 6] && v == [4, 3, 2, 1])
    }

    /// MLflow's JSON as the client reads it.
    @Test func mlflowJSONReadsExactly() throws {
        let v = try JSONParser.parse(Array(#"{"a":"NaN","b":"-Infinity","c":1.7976931348623157e308,"d":"9223372036854775807","e":-9223372036854775808,"f":5e-324}"#.utf8))
        #expect(v["a"]?.double?.isNaN == true && v["b"]?.double == -.infinity)
        #expect(v["c"]?.double == .greatestFiniteMagnitude && v["f"]?.double == .leastNonzeroMagnitude)
        #expect(v["d"]?.int64 == .max && v["e"]?.int64 == .min)
        #expect(v["missing"].items.isEmpty && v["a"]?.text == "NaN" && v["c"]?.text == nil)
    }

    /// Only http(s) URLs with a host; credentials leave the URL the journal and messages name.
    @Test func serverURLs() throws {
        for bad in ["ftp://h", "localhost:5000", "http://", "sqlite:///m.db"] {
            #expect(throws: TrackingError.self) { try MLflowHTTPClient(url: bad) }
        }
        let c = try MLflowHTTPClient(url: "https://alice:s%3Acret@mlflow.example:8443/prefix/")
        defer { c.close() }
        #expect(c.base == "https://mlflow.example:8443/prefix")
        #expect(c.url("/api/x", [("k", "a b")]) == "https://mlflow.example:8443/prefix/api/x?k=a%20b")
    }

    /// A finished run's journal entry: points written and the fingerprint, and entries of the earlier form (the SQL
    /// fingerprint alone, its first field the count).
    @Test func journaledRunsReadBothForms() {
        #expect(TrackingService.journaledRun("12;rest:ab,1,2,FINISHED,9,active,3") == (12, "rest:ab,1,2,FINISHED,9,active,3"))
        #expect(TrackingService.journaledRun("5,1,2,FINISHED,9,active,3") == (5, "5,1,2,FINISHED,9,active,3"))
        #expect(TrackingService.journaledRun("") == (-1, ""))
    }
}
