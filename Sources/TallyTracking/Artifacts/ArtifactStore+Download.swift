import TallyStore

/// How MLflow serves an artifact file: its content type and attachment header.
extension ArtifactStore {
    /// Extensions (and extension-less names) MLflow serves as `text/plain`.
    static let textExtensions: Set<String> = ["txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon", "toml",
                                              "yaml", "yml", "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst", "ipynb",
                                              "MLmodel", "MLproject"]
    /// Common types by extension (Python's `mimetypes` for these).
    static let knownTypes: [String: String] = ["png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
                                               "svg": "image/svg+xml", "webp": "image/webp", "bmp": "image/bmp", "html": "text/html",
                                               "htm": "text/html", "pdf": "application/pdf", "zip": "application/zip",
                                               "gz": "application/gzip", "tar": "application/x-tar", "mp4": "video/mp4", "wav": "audio/x-wav"]

    /// MLflow's `_guess_mime_type`: text extensions are `text/plain`, a few known types, else `application/octet-stream`.
    public static func contentType(_ name: String) -> String {
        let base = name.split(separator: "/").last.map(String.init) ?? name
        let dot = base.lastIndex(of: ".")
        let ext = dot.map { String(base[base.index(after: $0)...]) } ?? base
        if textExtensions.contains(ext) { return "text/plain" }
        return knownTypes[ext.lowercased()] ?? "application/octet-stream"
    }

    /// MLflow's `Content-Disposition` of a download: `attachment; filename=…` (quoted when not a token), with an
    /// ASCII fallback and `filename*=UTF-8''…` for non-ASCII names.
    public static func contentDisposition(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? "download"
        if name.unicodeScalars.allSatisfy(\.isASCII) { return "attachment; filename=" + headerValue(name) }
        let fallback = asciiFallback(name)
        let quoted = name.percentEncoded { b in
            let c = Unicode.Scalar(b)
            return b < 0x80 && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "!#$&+-.^_`|~".unicodeScalars.contains(c))
        }
        return "attachment; filename=" + headerValue(fallback.isEmpty ? "download" : fallback) + "; filename*=UTF-8''" + quoted
    }

    /// The ASCII letters of U+00C0…U+017F after compatibility decomposition (NFKD), generated from Unicode's data:
    /// what Python's `unicodedata.normalize("NFKD", …)` keeps of them once non-ASCII is dropped.
    static let latinBase: [String] = [
        "A", "A", "A", "A", "A", "A", "", "C", "E", "E", "E", "E", "I", "I", "I", "I", "", "N", "O", "O", "O", "O",
        "O", "", "", "U", "U", "U", "U", "Y", "", "", "a", "a", "a", "a", "a", "a", "", "c", "e", "e", "e", "e", "i",
        "i", "i", "i", "", "n", "o", "o", "o", "o", "o", "", "", "u", "u", "u", "u", "y", "", "y", "A", "a", "A",
        "a", "A", "a", "C", "c", "C", "c", "C", "c", "C", "c", "D", "d", "", "", "E", "e", "E", "e", "E", "e", "E",
        "e", "E", "e", "G", "g", "G", "g", "G", "g", "G", "g", "H", "h", "", "", "I", "i", "I", "i", "I", "i", "I",
        "i", "I", "", "IJ", "ij", "J", "j", "K", "k", "", "L", "l", "L", "l", "L", "l", "L", "l", "", "", "N", "n",
        "N", "n", "N", "n", "n", "", "", "O", "o", "O", "o", "O", "o", "", "", "R", "r", "R", "r", "R", "r", "S",
        "s", "S", "s", "S", "s", "S", "s", "T", "t", "T", "t", "", "", "U", "u", "U", "u", "U", "u", "U", "u", "U",
        "u", "U", "u", "W", "w", "Y", "y", "Y", "Z", "z", "Z", "z", "Z", "z", "s"
    ]

    /// MLflow's ASCII fallback of a file name: NFKD, then non-ASCII dropped (decomposition applied to the Latin
    /// letters above; other scripts are dropped whole).
    static func asciiFallback(_ name: String) -> String {
        var out = ""
        for c in name.unicodeScalars {
            if c.isASCII {
                out.unicodeScalars.append(c)
            } else if (0xC0..<0x180).contains(c.value) {
                out += latinBase[Int(c.value - 0xC0)]
            }
        }
        return out
    }

    /// A header parameter value: as is when it is a token, else quoted.
    static func headerValue(_ s: String) -> String {
        let token = !s.isEmpty && s.unicodeScalars.allSatisfy { c in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(c))
        }
        if token { return s }
        return "\"" + s.replacingBackslashesAndQuotes() + "\""
    }
}

extension String {
    fileprivate func replacingBackslashesAndQuotes() -> String {
        var out = ""
        for c in self {
            if c == "\\" || c == "\"" { out.append("\\") }
            out.append(c)
        }
        return out
    }
}
