import TallyStore

/// A string as a dictionary key that equals another only when both are the same UTF-8 bytes. Swift's `String`
/// equality is canonical equivalence ("café" precomposed equals "cafe" + U+0301, "K" equals the Kelvin sign), while
/// MLflow, SQLite and PostgreSQL keep such names apart: names users choose freely (registered models, experiments)
/// are keyed by this wherever two of them may meet in one dictionary. Metric, param and tag keys need not be: only
/// their normalization form C is accepted (``Validation/key(_:entity:)``), and no two such keys are equivalent.
struct ExactKey: Hashable, Sendable {
    let string: String

    init(_ string: String) {
        self.string = string
    }

    static func == (a: ExactKey, b: ExactKey) -> Bool { sameBytes(a.string, b.string) }

    func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Whether two strings are the same UTF-8 bytes (not only canonically equivalent, as `==` says): the store's
    /// byte order finds them equal.
    @inline(__always)
    static func sameBytes(_ a: String, _ b: String) -> Bool { KeyOrder.compare(a, b) == 0 }
}
