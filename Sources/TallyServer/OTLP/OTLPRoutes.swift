import Foundation
import Hummingbird
import NIOCore
import TallyTracking

/// OTLP/HTTP trace ingest, `POST /v1/traces` (at the root, as MLflow serves it): spans from any OpenTelemetry
/// exporter, and from MLflow's own client, which sends each finished span here before it sends the trace's info.
/// The experiment is the `x-mlflow-experiment-id` header; `x-mlflow-run-id` links the traces whose root span came to
/// a run. The body is an `ExportTraceServiceRequest` in protobuf (`application/x-protobuf`) or JSON
/// (`application/json`), optionally gzip- or deflate-compressed (`Content-Encoding`). The answer is an empty
/// `ExportTraceServiceResponse` in the request's format. Refusals carry MLflow's status and text, in MLflow's error
/// JSON with the text also as `detail` (its FastAPI route's field). `docs/otlp.md` has the rules.
struct OTLPRoutes {
    let endpoints: Endpoints

    /// The request headers MLflow's OTLP route reads.
    static let experimentHeader = "x-mlflow-experiment-id", runHeader = "x-mlflow-run-id"
    /// The route's path.
    static let path = "/v1/traces"

    /// The header naming the experiment is missing (MLflow's 422 from its header validation) or empty (its auth
    /// app's 400; MLflow alone would drop the spans silently).
    static var missingExperimentHeader: MLflowError {
        refusal(.badRequest, "Missing required header: X-Mlflow-Experiment-Id")
    }

    /// A refusal of the OTLP route: MLflow's error JSON with the text also under `detail`.
    static func refusal(_ status: HTTPResponse.Status, _ text: String) -> MLflowError {
        var e = MLflowError(TrackingError(status == .unprocessableContent ? .invalidParameterValue : .badRequest, text), status: status)
        e.detail = true
        return e
    }

    func add(to t: RouteTable) {
        let e = endpoints
        t.on(Self.path, .post, access: .needs(.update, .experimentHeader(Self.experimentHeader))) { request, context in
            let started = ContinuousClock.now
            defer { e.metrics?.otlp.answered(after: ContinuousClock.now - started) }
            guard let experimentID = request.headers[.init(Self.experimentHeader)!] else {
                throw Self.refusal(.unprocessableContent, "Field required: header \(Self.experimentHeader)")
            }
            guard !experimentID.isEmpty else { throw Self.missingExperimentHeader }
            let contentType = request.headers[.contentType]
            let media = contentType.map { $0.split(separator: ";", maxSplits: 1).first.map(String.init) ?? "" }?
                .trimmingCharacters(in: .whitespaces).lowercased()
            guard media == "application/x-protobuf" || media == "application/json" else {
                throw Self.refusal(.badRequest, "Invalid Content-Type: \(contentType ?? "None"). Expected: application/x-protobuf or application/json")
            }
            let encoding = request.headers[.contentEncoding]?.lowercased()
            if let encoding, encoding != "gzip", encoding != "deflate" {
                throw Self.refusal(.badRequest, "Unsupported Content-Encoding: \(encoding)")
            }
            let buffer = try await e.body(request, limit: e.largeBody)
            e.metrics?.otlp.received(bytes: buffer.readableBytes)
            let runID = request.headers[.init(Self.runHeader)!]
            let json = media == "application/json"
            try await e.pool.run {
                var body = Array(buffer.readableBytesView)
                do {
                    switch encoding {
                    case "gzip": body = try Inflate.gzip(body, limit: e.largeBody)
                    case "deflate": body = try Inflate.deflate(body, limit: e.largeBody)
                    default: break
                    }
                } catch Inflate.Failure.tooLarge {
                    throw MLflowError.tooLarge(limit: e.largeBody, path: Self.path)
                } catch {
                    throw Self.refusal(.badRequest, "Failed to decompress \(encoding ?? "") payload")
                }
                let resources: [OTLPResourceSpans]
                do { resources = json ? try OTLPJSON.exportRequest(body) : try OTLPProtobuf.exportRequest(body) } catch {
                    throw Self.refusal(.badRequest, "Invalid OpenTelemetry format")
                }
                guard !resources.isEmpty else { throw Self.refusal(.badRequest, "Invalid OpenTelemetry format - no spans found") }
                let stored: Int
                do { stored = try e.service.logSpans(experimentID: experimentID, runID: runID, resources) } catch let r as OTLPRefusal {
                    throw Self.refusal(HTTPResponse.Status(code: r.status), r.detail)
                } catch let t as TrackingError where MLflowError(t).status.code >= 500 {
                    e.metrics?.otlp.failed()
                    throw t
                }
                e.metrics?.otlp.stored(stored)
            }
            _ = context
            return json ? Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
                : Response(status: .ok, headers: [.contentType: "application/x-protobuf"], body: .init(byteBuffer: ByteBuffer()))
        }
    }
}
