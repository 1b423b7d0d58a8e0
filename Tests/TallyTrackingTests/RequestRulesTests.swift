import Foundation
import Testing
@testable import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

/// The request-level rules TallyTracking owns, against what a real MLflow 3.17 server answers
/// (docs/notes/mlflow-edge-behaviours.md).
@Suite struct RequestRulesTests {
    /// The byte-level fast path for metric keys accepts only keys the full MLflow check accepts: every key of up to
    /// six characters over an alphabet of the interesting bytes, plus benchmark-suite keys.
    @Test func keyFastPathIsNeverLaxerThanTheFullCheck() {
        let alphabet: [Character] = ["a", "/", ".", "_", " ", ":", "-", "é"]
        var keys: [String] = ["suite07/task_0042/acc", "a/b/c", "eval/.hidden", "a/..b", "a..b/c"]
        var frontier = [""]
        for _ in 0..<5 {
            frontier = frontier.flatMap { p in alphabet.map { p + String($0) } }
            keys += frontier
        }
        var fast = 0
        for k in keys where Validation.isPlainASCIIName(k) {
            fast += 1
            #expect((try? Validation.fullKeyCheck(k, entity: "Metric")) != nil, "fast path accepted \(k)")
        }
        #expect(fast > 1_000 && Validation.isPlainASCIIName("suite07/task_0042/acc") && !Validation.isPlainASCIIName("a//b"))
    }

    @Test func contentType() {
        #expect(RequestRules.contentTypeError(nil)?.message == "Bad Request. Content-Type header is missing.")
        #expect(RequestRules.contentTypeError("text/plain")?.message == "Bad Request. Content-Type must be one of ['application/json'].")
        #expect(RequestRules.contentTypeError("")?.code == .invalidParameterValue)
        #expect(RequestRules.contentTypeError("application/json") == nil)
        #expect(RequestRules.contentTypeError("application/json; charset=utf-8") == nil)
    }

    @Test func stepWindow() throws {
        #expect(try StepWindow.range(start: nil, end: nil) == nil)
        #expect(try StepWindow.range(start: 1, end: 1) == 1...1)
        expectError(.invalidParameterValue, "both must be specified") { _ = try StepWindow.range(start: 1, end: nil) }
        expectError(.invalidParameterValue, "Found start_step=5 and end_step=1") { _ = try StepWindow.range(start: 5, end: 1) }
    }

    @Test func artifactPaths() throws {
        for ok in ["", "a", "a/b.txt", "./a.txt", "a/./b", "a..b"] {
            #expect(throws: Never.self, "\(ok)") { try ArtifactStore.checkPath(ok) }
        }
        for bad in ["/etc/passwd", "/", "//etc", "..", "../x", "a/../../b", "%2e%2e/x", "%252e%252e/x", "%2Fetc", "a#b", "a%23b",
                    "file:///etc/passwd", "C:/x", "c:\\x", "a\\b"] {  // backslashes: stricter than MLflow on Linux
            expectError(.invalidParameterValue, "Invalid path") { try ArtifactStore.checkPath(bad) }
        }
    }

    @Test func artifactLocations() throws {
        var buffer = [CChar](repeating: 0, count: 4096)
        let cwd = String(cString: getcwd(&buffer, buffer.count)!)
        #expect(TrackingService.absoluteLocation("rel/dir/") == cwd + "/rel/dir")
        #expect(TrackingService.absoluteLocation("./x") == cwd + "/x")
        #expect(TrackingService.absoluteLocation("x/../y") == cwd + "/x/../y")
        #expect(TrackingService.absoluteLocation("file:rel") == "file://" + cwd + "/rel")
        for kept in ["/abs/path", "s3://bucket/p", "mlflow-artifacts:/5", "dbfs:/x"] {
            #expect(TrackingService.absoluteLocation(kept) == kept)
            #expect(throws: Never.self) { try Validation.artifactLocation(kept) }
        }
        for (bad, fragment) in [("http://host/x", "cannot use the 'http' scheme"), ("https://h/x", "'https' scheme"),
                                ("hdfs:/x", "'hdfs' scheme"), ("mlflow-artifacts://host/p", "'mlflow-artifacts' scheme"),
                                ("rel#f", "can't include fragments or params"), ("rel;p", "fragments or params"),
                                ("s3://b/p?x=..%2F", "Invalid query string"), ("runs:/abc/x", "cannot be a runs:/ URI"),
                                (String(repeating: "a", count: 2049), "cannot be greater than 2048")] {
            expectError(.invalidParameterValue, fragment) { try Validation.artifactLocation(bad) }
        }
    }

    @Test func downloads() {
        #expect(ArtifactStore.contentType("a/b.json") == "text/plain")
        #expect(ArtifactStore.contentType("model/MLmodel") == "text/plain")
        #expect(ArtifactStore.contentType("x.png") == "image/png")
        #expect(ArtifactStore.contentType("x.bin") == "application/octet-stream")
        #expect(ArtifactStore.contentDisposition("d/hello.txt") == "attachment; filename=hello.txt")
        #expect(ArtifactStore.contentDisposition("a b.txt") == "attachment; filename=\"a b.txt\"")
        #expect(ArtifactStore.contentDisposition("über x.txt") == "attachment; filename=\"uber x.txt\"; filename*=UTF-8''%C3%BCber%20x.txt")
        #expect(ArtifactStore.contentDisposition("日本語") == "attachment; filename=download; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E")
    }

    /// The one string escaper: every string reads back the same through a general JSON parser, and the spelling is
    /// MLflow's (`\"`, `\\`, `\n`, `\u001f`; UTF-8 as is).
    @Test func stringEscaping() throws {
        #expect(JSONText.quote("a\"b\\c\nd\u{1F}é😀\u{0}") == "\"a\\\"b\\\\c\\nd\\u001fé😀\\u0000\"")
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1}", "\u{1F}", "é", "😀", "/", " ", "\u{7F}", "\u{2028}"]
        for _ in 0..<2000 {
            let s = String((0..<Int.random(in: 0..<24, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            let quoted = JSONText.quote(s)
            let back = try JSONSerialization.jsonObject(with: Data(("[" + quoted + "]").utf8)) as? [String]
            #expect(back == [s], "\(quoted)")
        }
    }

    @Test func percentDecoding() {
        #expect(PercentDecoding.decode("a%2Fb+c", plusIsSpace: false) == "a/b+c")
        #expect(PercentDecoding.decode("a%2fb+c", plusIsSpace: true) == "a/b c")
        #expect(PercentDecoding.decode("%zz%4", plusIsSpace: false) == "%zz%4")
        #expect(PercentDecoding.query("a=1&b=x+y&b=%2F&c") == ["a": ["1"], "b": ["x y", "/"], "c": [""]])
    }

    @Test func staticPrefixes() {
        for ok in ["/mlflow", "/team/tracking", "/a-b_c.d~e", "/v2"] { #expect(RequestRules.staticPrefixError(ok) == nil, "\(ok)") }
        // MLflow's three rules, with its messages.
        #expect(RequestRules.staticPrefixError("mlflow") == "--static-prefix must begin with a '/'.")
        #expect(RequestRules.staticPrefixError("/mlflow/") == "--static-prefix should not end with a '/'.")
        #expect(RequestRules.staticPrefixError("/") == "--static-prefix should not end with a '/'.")
        #expect(RequestRules.staticPrefixError("/ml{x}") == "--static-prefix must not contain '{' or '}'.")
        // What a route could not mount as written.
        for bad in ["/ml:flow", "/ml*", "/a//b", "/a/../b", "/ml%20x", "/ml?x", "/ml#x", "/ml flow", "/ü"] {
            #expect(RequestRules.staticPrefixError(bad)?.contains("path segments") == true, "\(bad)")
        }
    }
}
