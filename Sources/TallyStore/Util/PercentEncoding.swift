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
