import TallyTracking
/// Reading MLflow's answers (the REST client's side): fields as Swift values, `nil` when absent or of another type.
extension JSONValue {
    /// An int64 written as a number or, as protobuf's JSON may write one, a string.
    var int64: Int64? {
        switch self {
        case .number(let n): Int64(n)
        case .string(let s): Int64(s)
        default: nil
        }
    }

    /// A double: a number, or MLflow's `"NaN"`, `"Infinity"` and `"-Infinity"` (strings or bare words).
    var double: Double? {
        switch self {
        case .number(let n), .string(let n):
            switch n {
            case "NaN": .nan
            case "Infinity": .infinity
            case "-Infinity": -.infinity
            default: Double(n)
            }
        default: nil
        }
    }

    /// An array's elements (none when absent or not an array: protobuf's JSON leaves empty lists out).
    var items: [JSONValue] {
        if case .array(let a) = self { return a }
        return []
    }
}

extension Optional where Wrapped == JSONValue {
    /// The elements of an array member that may be absent.
    var items: [JSONValue] { self?.items ?? [] }
}
