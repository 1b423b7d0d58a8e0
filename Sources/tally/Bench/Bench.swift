import ArgumentParser

/// `tally bench`: benchmarks that print one JSON object.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a benchmark and print its figures.",
        subcommands: [EngineBench.self, WALBench.self, TrackingBench.self, HTTPBench.self, WideBench.self, CompactBench.self, ClusterLogBench.self, PostgresBench.self]
    )
}
