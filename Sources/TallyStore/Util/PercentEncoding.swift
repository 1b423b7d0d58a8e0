extension String {
    /// The string's UTF-8 bytes, each one `keeping` refuses written `%XX` (two uppercase hex digits): run directory
    /// names, `filename*=` in a download's `Content-Disposition`, the MLflow client's query values.
    public func percentEncoded(keeping: (UInt8) -> Bool) -> String {
        let hex = Array("0123456789ABCDEF".unicodeScalars)
        var out = String.UnicodeScalarView()
        for b in utf8 {
            if keeping(b) {
                out.append(Unicode.Scalar(b))
            } else {
                out.append("%")
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xF)])
            }
        }
        return String(out)
    }
}

extension String {
    /// RFC 3986's encoding: every byte but the unreserved `A–Z a–z 0–9 - . _ ~` written `%XX` (and `/` kept when
    /// `keepingSlashes`): query values and artifact paths of the MLflow client, and what AWS Signature V4 signs.
    public func uriEncoded(keepingSlashes: Bool = false) -> String {
        percentEncoded { b in
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
            case UInt8(ascii: "/"): keepingSlashes
            default: false
            }
        }
    }
}
