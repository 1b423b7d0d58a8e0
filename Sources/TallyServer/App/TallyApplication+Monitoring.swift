import Foundation
import Logging
import TallyTracking

extension TallyApplication {
    /// The metrics `config` asks for (``ServerConfiguration/prometheusDirectory``; ``openService(_:)`` made its
    /// directory); `nil` when off.
    static func serverMetrics(_ config: ServerConfiguration, service: TrackingService, pool: BlockingPool) -> ServerMetrics? {
        config.prometheusDirectory == nil ? nil : ServerMetrics(service: service, pool: pool)
    }

    /// The access log's logger (`--access-log`): the server's, at `info` whatever `--log-level` says (the lines are
    /// asked for by name); `nil` when off.
    static func accessLogger(_ config: ServerConfiguration, _ logger: Logger) -> Logger? {
        guard config.accessLog else { return nil }
        var l = logger
        l.logLevel = .info
        return l
    }

    /// Creates `--expose-prometheus`'s directory, as MLflow does (``openService(_:)`` calls it before opening the
    /// stores, so a directory that cannot be made refuses the start before anything is touched).
    /// - Throws: ``TrackingError`` naming the directory when it cannot be created.
    static func prepareMetricsDirectory(_ directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TrackingError(.invalidParameterValue, "--expose-prometheus \(directory): the directory cannot be created (\(error))")
        }
    }
}
