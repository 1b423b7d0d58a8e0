import Foundation

extension PostgresURI {
    /// libpq's password file (`~/.pgpass`): lines of `hostname:port:database:username:password`, the first line whose
    /// four fields match the connection giving its password.
    ///
    /// As libpq reads it (differential-tested against `psql`: `PostgresURITests`):
    /// - A field of `*` alone matches anything; otherwise it must equal the value, `\` escaping the next character
    ///   (`\:`, `\\`). The port is compared as written (`05432` is not `5432`).
    /// - The password runs to the next unescaped `:` (the rest of the line is ignored), its escapes removed; an empty
    ///   one is no password, and the search stops at the first match all the same.
    /// - Lines starting with `#` are comments (as a host field, `#…` could match no connection anyway); a line with
    ///   fewer fields matches nothing; `\r\n` endings are taken.
    /// - A connection over the default socket directory matches `localhost`, another socket directory its path.
    /// - A file readable or writable by its group or others, or not a plain file, is passed over (libpq warns).
    enum Passfile {
        /// What a lookup found.
        enum Found: Equatable {
            /// The first matching line's password.
            case found(String)
            /// The file was not read: why (kept for the error, should the connection be refused).
            case passedOver(String)
        }

        /// `~/.pgpass`, as libpq.
        static func defaultPath(environment: [String: String]) -> String {
            PostgresURI.home(environment) + "/.pgpass"
        }

        /// The name a connection's host has in the file.
        static func host(_ host: String) -> String {
            host == PostgresURI.defaultSocketDirectory ? "localhost" : host
        }

        /// The password for the connection from `path`; `nil` when the file does not exist or no line matches.
        static func lookup(_ path: String, host: String, port: String, database: String, user: String) -> Found? {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            guard st.st_mode & S_IFMT == S_IFREG else { return .passedOver("the password file \(path) is not a plain file, so it was not read") }
            guard st.st_mode & (S_IRWXG | S_IRWXO) == 0 else {
                return .passedOver("the password file \(path) has group or world access, so it was not read; permissions should be u=rw (0600) or less")
            }
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            let fields = [Array(host.utf8), Array(port.utf8), Array(database.utf8), Array(user.utf8)]
            for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
                var bytes = Array(line)
                if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
                guard let first = bytes.first, first != UInt8(ascii: "#") else { continue }
                if let password = match(bytes, fields) {
                    return password.isEmpty ? nil : .found(String(decoding: password, as: UTF8.self))
                }
            }
            return nil
        }

        /// The password of `line` when its first four fields match `fields`.
        static func match(_ line: [UInt8], _ fields: [[UInt8]]) -> [UInt8]? {
            let colon = UInt8(ascii: ":"), backslash = UInt8(ascii: "\\"), star = UInt8(ascii: "*")
            var i = 0
            for value in fields {
                if i + 1 < line.count, line[i] == star, line[i + 1] == colon {
                    i += 2
                    continue
                }
                var j = 0
                while true {
                    guard i < line.count else { return nil }
                    var c = line[i], escaped = false
                    if c == backslash, i + 1 < line.count {
                        i += 1
                        c = line[i]
                        escaped = true
                    }
                    if c == colon, !escaped {
                        guard j == value.count else { return nil }
                        i += 1
                        break
                    }
                    guard j < value.count, value[j] == c else { return nil }
                    i += 1
                    j += 1
                }
            }
            var password: [UInt8] = []
            while i < line.count, line[i] != colon {
                if line[i] == backslash, i + 1 < line.count { i += 1 }
                password.append(line[i])
                i += 1
            }
            return password
        }
    }
}
