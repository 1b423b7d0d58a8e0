import ArgumentParser

/// The `tally` command-line tool.
@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Tally: an MLflow-compatible experiment-tracking server with a columnar metric store.",
        version: "0.1.0",
        subcommands: [ServerCommand.self, CompareCommand.self, ScoreboardCommand.self, Bench.self, StoreCommand.self, TokenCommand.self, BackupCommand.self, GCCommand.self, MetadataCommand.self, ArtifactsCommand.self, MetricsCommand.self, ClusterCommand.self, ImportCommand.self, ExportCommand.self]
    )
}
