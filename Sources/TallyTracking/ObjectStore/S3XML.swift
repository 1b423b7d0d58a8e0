/// What Tally reads of S3's XML answers: the text of named elements, in document order. S3's answers are flat
/// documents in one default namespace (`ListBucketResult`, `InitiateMultipartUploadResult`, `Error`), so a scan for
/// `<Name>…</Name>` with XML's five entities and character references decoded is all that is needed.
enum S3XML {
    /// The inner text (or markup) of each `<tag>` element of `xml`, in order; entities are decoded when `decode`.
    static func elements(_ tag: String, in xml: Substring, decode: Bool = true) -> [Substring] {
        let open = "<\(tag)>", openAttr = "<\(tag) ", close = "</\(tag)>"
        var out: [Substring] = []
        var rest = xml[...]
        while let start = rest.firstRange(of: open) ?? rest.firstRange(of: openAttr) {
            var bodyStart = start.upperBound
            if rest[start].hasSuffix(" ") {
                guard let gt = rest[bodyStart...].firstIndex(of: ">") else { break }
                bodyStart = rest.index(after: gt)
                if rest[rest.index(before: gt)] == "/" {  // <tag ... />
                    out.append("")
                    rest = rest[bodyStart...]
                    continue
                }
            }
            guard let end = rest[bodyStart...].firstRange(of: close) else { break }
            let body = rest[bodyStart..<end.lowerBound]
            out.append(decode ? Substring(unescape(body)) : body)
            rest = rest[end.upperBound...]
        }
        return out
    }

    /// The first `<tag>`'s text.
    static func first(_ tag: String, in xml: Substring) -> String? { elements(tag, in: xml).first.map(String.init) }

    /// `&amp; &lt; &gt; &quot; &apos; &#N; &#xN;` decoded.
    static func unescape(_ s: Substring) -> String {
        guard s.contains("&") else { return String(s) }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            guard c == "&", let semi = s[i...].prefix(12).firstIndex(of: ";") else {
                out.append(c)
                i = s.index(after: i)
                continue
            }
            let name = s[s.index(after: i)..<semi]
            switch name {
            case "amp": out.append("&")
            case "lt": out.append("<")
            case "gt": out.append(">")
            case "quot": out.append("\"")
            case "apos": out.append("'")
            default:
                if name.hasPrefix("#x") || name.hasPrefix("#X"), let v = UInt32(name.dropFirst(2), radix: 16), let u = Unicode.Scalar(v) {
                    out.unicodeScalars.append(u)
                } else if name.hasPrefix("#"), let v = UInt32(name.dropFirst()), let u = Unicode.Scalar(v) {
                    out.unicodeScalars.append(u)
                } else {
                    out += s[i...semi]
                }
            }
            i = s.index(after: semi)
        }
        return out
    }

    /// `s` escaped for element text.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}
