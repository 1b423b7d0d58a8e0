import Foundation
import Testing
@testable import TallyTracking

/// MLflow 3's security middleware rules (`BrowserSecurity`) and the `fnmatch` patterns they are written in (`Glob`),
/// the latter differential-tested against Python's own `fnmatch`.
@Suite struct BrowserSecurityTests {
    static let defaults = try! BrowserSecurity()

    @Test func theDefaultHostsAreLocalhostAndPrivateAddresses() {
        let s = Self.defaults
        for ok in ["localhost", "localhost:5000", "LOCALHOST:5000", "127.0.0.1", "127.0.0.1:80", "127.1.2.3:5000", "0.0.0.0:5000",
                   "10.0.0.5", "10.255.255.255:8080", "172.16.0.1", "172.31.255.1:5000", "192.168.1.20:5000",
                   "[::1]", "[::1]:5000", "[fd12:3456::1]:5000", "[fc00::1]", "[::ffff:10.1.2.3]:80", "fd00::1"] {
            #expect(s.allowsHost(ok), "\(ok)")
        }
        // Public addresses and names; names that only look like private addresses (a rebinding name MLflow's
        // `10.*` pattern lets through); malformed headers.
        for no in ["evil.example", "evil.example:5000", "172.15.0.1", "172.32.0.1", "192.169.0.1", "11.0.0.1", "8.8.8.8:53",
                   "10.attacker.example", "192.168.attacker.example:5000", "10.0.0.5.attacker.example", "127.0.0.1.nip.io",
                   "localhost.attacker.example", "[2001:db8::1]:5000", "[::ffff:8.8.8.8]", "[fe80::1%25eth0]",
                   "10.0.0.256", "010.0.0.1x", "localhost:", "localhost:50x0", "[::1", "", ":5000",
                   // Leading zeros: octal to inet_aton and to a browser's URL parser (010 = 8), decimal to a naive one.
                   // No browser sends them (it sends the canonical form), so they are refused, not guessed at.
                   "010.0.0.1", "0127.0.0.1", "10.00.0.1:5000", "0x7f.0.0.1"] {
            #expect(!s.allowsHost(no), "\(no)")
        }
        #expect(!s.allowsHost(nil))
    }

    @Test func listedHostsReplaceTheDefaults() throws {
        let s = try BrowserSecurity(allowedHosts: " MLflow.Example.com , 10.0.0.5:5000,*.corp.internal,app-*.test:8080,b?.test")
        #expect(s.allowsHost("mlflow.example.com") && s.allowsHost("mlflow.example.com:5000") && s.allowsHost("MLFLOW.example.COM:443"))
        #expect(s.allowsHost("10.0.0.5:5000") && !s.allowsHost("10.0.0.5:5001") && !s.allowsHost("10.0.0.5"))
        #expect(s.allowsHost("a.corp.internal") && s.allowsHost("a.b.corp.internal:5000") && !s.allowsHost("corp.internal"))
        #expect(s.allowsHost("app-1.test:8080") && !s.allowsHost("app-1.test") && !s.allowsHost("app-1.test:8081"))
        // As in MLflow, an entry is a pattern only when it holds `*`.
        #expect(s.allowsHost("b?.test") && !s.allowsHost("b1.test"))
        // The list replaces the defaults, as MLflow's does; the server's own names stay allowed.
        #expect(!s.allowsHost("localhost:5000") && !s.allowsHost("192.168.0.1"))
        let own = s.knowing(["0.0.0.0", "http://Node-2.internal:5001/", "::1"])
        #expect(own.allowsHost("node-2.internal:5001") && own.allowsHost("node-2.internal") && own.allowsHost("[::1]:5000"))
        #expect(!own.allowsHost("0.0.0.0:5000") && own.ownNames == ["node-2.internal", "[::1]"])
        #expect(s.knowing(["http://user@node-3:5000?x=1", "https://[fd00::2]:443/p", "node-4:5000"]).ownNames == ["node-3", "[fd00::2]", "node-4"])
        let any = try BrowserSecurity(allowedHosts: "*")
        #expect(any.anyHost && any.allowsHost("evil.example") && any.allowsHost(nil))
        // A pattern of digits, dots and `*` matches addresses only, not names that start like them (MLflow's reading
        // lets `10.0.0.attacker.example` through); `*:5000` is not such a pattern.
        let addresses = try BrowserSecurity(allowedHosts: "10.0.0.*,192.168.*:8080,*:5000")
        #expect(addresses.hostMatch("10.0.0.7") == .pattern && addresses.hostMatch("10.0.0.7:5001") == .pattern)
        #expect(addresses.hostMatch("10.0.0.attacker.example") == nil && addresses.hostMatch("10.0.0.attacker.example:80") == nil)
        #expect(addresses.allowsHost("192.168.1.2:8080") && !addresses.allowsHost("192.168.evil.example:8080"))
        #expect(addresses.allowsHost("anything.example:5000") && !addresses.allowsHost("anything.example:5001"))
    }

    @Test func crossSiteWritesAreRefusedUnlessTheOriginIsAllowed() throws {
        let s = Self.defaults
        func refused(_ method: String, _ origin: String?, host: String? = "127.0.0.1:5000", _ p: BrowserSecurity = Self.defaults) -> Bool {
            p.refusesStateChange(method: method, origin: origin, host: host)
        }
        for m in ["POST", "PUT", "DELETE", "PATCH"] { #expect(refused(m, "https://evil.example")) }
        for m in ["GET", "HEAD", "OPTIONS"] { #expect(!refused(m, "https://evil.example")) }
        #expect(refused("POST", "null") && !refused("POST", nil) && !refused("POST", ""))
        // Localhost origins on any scheme and port, as MLflow's `is_localhost_origin`.
        for o in ["http://localhost:3000", "https://localhost", "http://127.0.0.1:8888", "http://[::1]:5000"] { #expect(!refused("POST", o), "\(o)") }
        #expect(refused("POST", "http://localhost.evil.example") && refused("POST", "http://127.0.0.1.nip.io"))
        // The page the request came from is the server's own (the UI at a private address): same origin.
        #expect(!refused("POST", "http://10.0.0.5:5000", host: "10.0.0.5:5000") && refused("POST", "http://10.0.0.5:5000", host: "10.0.0.5:5001"))
        #expect(refused("POST", "http://10.0.0.5:5000/x", host: "10.0.0.5:5000"))
        // Same origin proves nothing when any host is answered (a rebinding page is same-origin by name).
        let anyHost = try BrowserSecurity(allowedHosts: "*")
        #expect(refused("POST", "http://rebind.example:5000", host: "rebind.example:5000", anyHost))
        // Listed origins, exactly or by pattern; `*` lets every origin write.
        let listed = try BrowserSecurity(allowedOrigins: "https://app.example.com, https://*.notebooks.example")
        #expect(!refused("POST", "https://app.example.com", listed) && !refused("POST", "HTTPS://APP.example.com", listed))
        #expect(refused("POST", "http://app.example.com", listed) && refused("POST", "https://app.example.com:8443", listed))
        #expect(!refused("POST", "https://a.notebooks.example", listed) && refused("POST", "https://notebooks.example", listed))
        let anyOrigin = try BrowserSecurity(allowedOrigins: "*")
        #expect(!refused("DELETE", "https://evil.example", anyOrigin))
        // Same origin only for a Host allowed by name: a pattern may match the rebinding page's own name.
        let patterns = try BrowserSecurity(allowedHosts: "*.corp.example,tally.corp.example")
        #expect(patterns.hostMatch("a.corp.example") == .pattern && patterns.hostMatch("tally.corp.example:5000") == .named)
        #expect(refused("POST", "http://a.corp.example", host: "a.corp.example", patterns))
        #expect(!refused("POST", "http://tally.corp.example", host: "tally.corp.example", patterns))
        // And of the same scheme, when the server knows it (its own, or a proxy's X-Forwarded-Proto).
        #expect(s.refusesStateChange(method: "POST", origin: "https://10.0.0.5", host: "10.0.0.5", scheme: "http"))
        #expect(!s.refusesStateChange(method: "POST", origin: "https://10.0.0.5", host: "10.0.0.5", scheme: "HTTPS"))
        #expect(!s.refusesStateChange(method: "POST", origin: "https://10.0.0.5", host: "10.0.0.5", scheme: nil))
        _ = s
    }

    @Test func corsHeadersGoToAllowedOriginsOnly() throws {
        let s = try BrowserSecurity(allowedOrigins: "https://app.example.com")
        #expect(s.cors("https://app.example.com")! == ("https://app.example.com", true))
        #expect(s.cors("http://localhost:3000")! == ("http://localhost:3000", true))
        #expect(s.cors("https://evil.example") == nil && s.cors(nil) == nil && s.cors("null") == nil)
        let any = try BrowserSecurity(allowedOrigins: "*,https://x.example")
        #expect(any.cors("https://evil.example")! == ("*", false))
        #expect(BrowserSecurity.corsAllows(method: "PATCH") && !BrowserSecurity.corsAllows(method: "FOO") && !BrowserSecurity.corsAllows(method: "post"))
    }

    @Test func settingsThatCanNeverMatchAreRefused() throws {
        #expect(throws: TrackingError.self) { try BrowserSecurity(allowedHosts: "https://mlflow.example.com") }
        #expect(throws: TrackingError.self) { try BrowserSecurity(allowedOrigins: "https://app.example.com/") }
        #expect(throws: TrackingError.self) { try BrowserSecurity(allowedOrigins: "app.example.com") }
        #expect(throws: TrackingError.self) { try BrowserSecurity(frameOptions: "ALLOW-FROM https://x") }
        #expect(try BrowserSecurity(frameOptions: "deny").frameOptions == .deny)
        #expect(try BrowserSecurity(frameOptions: "None").frameOptions == nil)
        #expect(try BrowserSecurity(allowedHosts: " , ").allowedHosts == nil)  // nothing listed: the defaults
        #expect(try BrowserSecurity(allowedOrigins: "https://*.example/x").allowedOrigins == ["https://*.example/x"])  // a pattern is kept
    }

    @Test func theMessagesNameTheSetting() {
        #expect(BrowserSecurity.invalidHost("evil.example").message.hasPrefix("Invalid Host header - possible DNS rebinding attack detected"))
        #expect(BrowserSecurity.invalidHost("evil.example").message.contains("--allowed-hosts"))
        #expect(BrowserSecurity.crossOrigin("https://e").message.hasPrefix("Cross-origin request blocked"))
        #expect(BrowserSecurity.crossOrigin("https://e").message.contains("--cors-allowed-origins"))
        #expect(BrowserSecurity.invalidHost(nil).code == .permissionDenied)
    }

    /// `Glob` against Python's `fnmatch.fnmatchcase` over hand-picked and random patterns and names.
    @Test func globsMatchAsPythonsFnmatch() throws {
        var cases: [(String, String)] = [
            ("*", ""), ("*", "abc"), ("a*c", "abbbc"), ("a*c", "ab"), ("a?c", "abc"), ("a?c", "ac"), ("**a", "xa"),
            ("[abc]", "b"), ("[!abc]", "b"), ("[!abc]", "d"), ("[a-c]x", "bx"), ("[z-a]", "m"), ("[!]", "x"), ("[]]", "]"),
            ("[!]]", "a"), ("[]a]", "a"), ("[", "["), ("[a", "[a"), ("a]", "a]"), ("[a-]", "-"), ("[-a]", "-"), ("[a--]", "a"),
            ("[--0]", "/"), ("[a-c-e]", "-"), ("[a-c-e]", "d"), ("[^a]", "^"), ("[^a]", "b"), ("\\*", "\\x"), ("[\\]", "\\"),
            ("*.corp.internal", "a.b.corp.internal"), ("[[]::1]:*", "[::1]:5000"), ("10.*", "10.attacker.example"),
            ("a*b*c", "aXbYbZc"), ("a*b*c", "aXbYbZ"), ("*x*", "abc"), ("?*", ""), ("[!a-c]*", "d"), ("é?", "éü"),
            ("[b-a!]", "x"), ("[!b-a]", "x"), ("*[?-.!]", "!cb"), ("[a-c-e]", "b"), ("[!-]", "-"), ("[!-]", "a"),
        ]
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "b", "-", "]", "[", "!", "*", "?", "^", ".", ":", "c"]
        for _ in 0..<4000 {
            let p = String((0..<Int.random(in: 0...7, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            let t = String((0..<Int.random(in: 0...6, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            cases.append((p, t))
        }
        let python = try Self.pythonMatches(cases)
        var compared = 0
        for (i, (p, t)) in cases.enumerated() {
            guard let answer = python[i] else { continue }  // a pattern Python itself fails on (a set it cannot build)
            #expect(Glob(p).matches(t) == answer, "pattern \(p) text \(t)")
            compared += 1
        }
        #expect(compared > cases.count * 9 / 10)
    }

    /// Python's answers for `cases`, one per case, `nil` where Python raises (python3 is a dependency
    /// `scripts/bootstrap` installs).
    static func pythonMatches(_ cases: [(String, String)]) throws -> [Bool?] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = """
            import fnmatch, json, sys
            def match(p, t):
                try:
                    return fnmatch.fnmatchcase(t, p)
                except Exception:
                    return None
            print(json.dumps([match(p, t) for p, t in json.load(sys.stdin)]))
            """
        p.arguments = ["python3", "-c", script]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: cases.map { [$0.0, $0.1] }))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let answers = (try JSONSerialization.jsonObject(with: data) as? [Any])?.map { $0 as? Bool }
        #expect(p.terminationStatus == 0 && answers?.count == cases.count)
        return answers ?? []
    }
}
