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
        t.on(Self.path, .post, access: .needs(.update, .experimentHeader(Self.experimentHeader))) { request, _ in
            let started = ContinuousClock.now
            defer { e.metrics?.otlp.answered(after: ContinuousClock.now - started) }
            guard let experimentID = request.headers[.init(Self.experimentHeader)!] else {
                throw Self.refusal(.unprocessableContent, "Field required: header \(Self.experimentHeader)")
            }
            guard !experimentID.isEmpty else { throw Self.missingExperimentHeader }
            let json = try Self.isJSON(request.headers[.contentType])
            let encoding = request.headers[.contentEncoding]?.lowercased()
            if let encoding, encoding != "gzip", encoding != "deflate" {
                throw Self.refusal(.badRequest, "Unsupported Content-Encoding: \(encoding)")
            }
            let buffer = try await e.body(request, limit: e.largeBody)
            e.metrics?.otlp.received(bytes: buffer.readableBytes)
            let runID = request.headers[.init(Self.runHeader)!]
            try await e.pool.run {
                let resources = try Self.exportRequest(Array(buffer.readableBytesView), encoding: encoding, json: json, limit: e.largeBody)
                let stored: Int
                do { stored = try e.service.logSpans(experimentID: experimentID, runID: runID, resources) } catch let r as OTLPRefusal {
                    throw Self.refusal(HTTPResponse.Status(code: r.status), r.detail)
                } catch {  // the store failed (not the request): counted, as MLflow counts it
                    if !((error as? TrackingError).map { MLflowError($0).status.code < 500 } ?? false) { e.metrics?.otlp.failed() }
                    throw error
                }
                e.metrics?.otlp.stored(stored)
            }
            return json ? Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
                : Response(status: .ok, headers: [.contentType: "application/x-protobuf"], body: .init(byteBuffer: ByteBuffer()))
        }
    }

    /// Whether the body is JSON (`application/json`) rather than protobuf (`application/x-protobuf`), by the media type
    /// before any parameter; any other is refused.
    static func isJSON(_ contentType: String?) throws -> Bool {
        let media = contentType.map { $0.split(separator: ";", maxSplits: 1).first.map(String.init) ?? "" }?
            .trimmingCharacters(in: .whitespaces).lowercased()
        guard media == "application/x-protobuf" || media == "application/json" else {
            throw refusal(.badRequest, "Invalid Content-Type: \(contentType ?? "None"). Expected: application/x-protobuf or application/json")
        }
        return media == "application/json"
    }

    /// The resource spans of a body as sent: inflated (at most `limit` bytes), then read in its format.
    static func exportRequest(_ sent: [UInt8], encoding: String?, json: Bool, limit: Int) throws -> [OTLPResourceSpans] {
        var body = sent
        do {
            switch encoding {
            case "gzip": body = try Inflate.gzip(sent, limit: limit)
            case "deflate": body = try Inflate.deflate(sent, limit: limit)
            default: break
            }
        } catch Inflate.Failure.tooLarge {
            throw MLflowError.tooLarge(limit: limit, path: path)
        } catch {
            throw refusal(.badRequest, "Failed to decompress \(encoding ?? "") payload")
        }
        let resources: [OTLPResourceSpans]
        do { resources = json ? try OTLPJSON.exportRequest(body) : try OTLPProtobuf.exportRequest(body) } catch {
            throw refusal(.badRequest, "Invalid OpenTelemetry format")
        }
        guard !resources.isEmpty else { throw refusal(.badRequest, "Invalid OpenTelemetry format - no spans found") }
        return resources
    }
}
