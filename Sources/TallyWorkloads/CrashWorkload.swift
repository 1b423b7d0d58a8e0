/// The deterministic data of the crash-test harness, shared by the writer (`tally store crash-writer`) and the
/// verifier, so either can recompute any point.
public enum CrashWorkload {
    /// The value of point `point` of batch `batch` of run `run` for key `m` (key `n` stores its negation).
    public static func value(run: Int, batch: Int, point: Int) -> Double { Double(run) * 1e6 + Double(batch) + Double(point) / 1000 }
}
