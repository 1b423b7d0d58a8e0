extension Duration {
    /// The duration in whole nanoseconds (truncated toward zero).
    public var totalNanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    /// The duration in seconds.
    public var totalSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
