import ArgumentParser
import Foundation
import TallyStore
import TallyWorkloads

/// `tally bench compact`: one compaction of a long run written as several segments: its time and the memory it
/// needs (peak RSS during the merge, over the RSS before it), with segments holding consecutive or interleaved steps.
struct CompactBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Measure compacting a long run's segments into one: seconds and peak memory (prints JSON with --json)."
    )

    @Option(help: "Points per key.") var points = 10_000_000
    @Option(help: "Metric keys logged together (they share step and timestamp columns).") var keys = 2
    @Option(help: "Segments to merge.") var segments = 8
    @Option(help: "consecutive (segment i holds the i-th step range) or interleaved (segment i holds steps ≡ i mod segments).")
    var layout = "interleaved"
    @OptionGroup var output: BenchOutput

    mutating func run() throws {
        guard ["consecutive", "interleaved"].contains(layout) else { throw ValidationError("unknown layout '\(layout)'") }
        var config = StoreConfiguration()
        config.sealPoints = Int.max
        config.headMemoryBudget = Int.max
        config.compactionThreshold = 0
        config.wal = nil
        let root = output.scratch("compact")
        defer { system_rm(root) }
        let store = try MetricStore(directory: root, configuration: config)
        let names = (0..<keys).map { "metric\($0)" }
        var rng = SplitMix64(seed: 11)
        let perSegment = (points + segments - 1) / segments
        for seg in 0..<segments {
            var i = 0
            while i < perSegment {
                let n = min(100_000, perSegment - i)
                let steps = (i..<(i + n)).map { j in
                    Int64(layout == "consecutive" ? seg * perSegment + j : j * segments + seg)
                }
                let timestamps = steps.map { 1_700_000_000_000 + $0 * 10 }
                try store.append(run: "r", series: names.map { k in
                    SeriesBatch(key: k, steps: steps, timestamps: timestamps, values: (0..<n).map { _ in Double(Float(rng.unit())) })
                })
                i += n
            }
            try store.flush(run: "r")
        }
        let bytesBefore = try store.stats(run: "r").segmentBytes
        let rssBefore = residentBytes()
        resetPeakResident()
        let merged = try seconds { _ = try store.compact(run: "r") }
        let peak = peakResidentBytes()
        let total = points * keys
        try expect(try store.stats(run: "r").sealedPoints == segments * perSegment * keys, "points lost by the merge")
        var out = JSONObject()
        out.add("points", total)
        out.add("segments", segments)
        out.add("layout", layout)
        out.add("compact_seconds", merged)
        out.add("compact_mpts_per_s", Double(total) / merged / 1e6, digits: 1)
        out.add("rss_before_mb", Double(rssBefore) / 1e6, digits: 1)
        out.add("peak_rss_during_mb", Double(peak) / 1e6, digits: 1)
        out.add("peak_over_before_mb", Double(max(0, peak - rssBefore)) / 1e6, digits: 1)
        out.add("bytes_before", Int(bytesBefore))
        out.add("bytes_after", Int(try store.stats(run: "r").segmentBytes))
        try store.close()
        output.emit(out)
    }

    /// Fails the benchmark (a wrong result is not a measurement).
    private func expect(_ ok: Bool, _ message: String) throws {
        if !ok { throw ValidationError(message) }
    }
}

/// This process's peak resident set size since the last ``resetPeakResident()`` (`VmHWM`), bytes.
func peakResidentBytes() -> Int { statusBytes("VmHWM") }

/// Resets the kernel's peak-RSS mark of this process to its current RSS (`/proc/self/clear_refs`, value 5).
func resetPeakResident() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}
