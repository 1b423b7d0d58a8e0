import Hummingbird
import NIOCore
import NIOPosix
import TallyStore
import TallyTracking

/// Tally's own API under `/api/tally/v1`: columnar ingest and compare queries. Run ids, keys and points are the
/// ones MLflow's API sees.
struct NativeAPI: Sendable {
    let service: TrackingService
    /// Largest ingest body accepted.
    let maxBody: Int
    /// Threads for the blocking store work.
    let pool: NIOThreadPool

    static let prefix = "/api/tally/v1"

    func register(on router: Router<BasicRequestContext>) {
        router.post(RouterPath(Self.prefix + "/runs/:run_id/metrics")) { request, context in
            guard let runID = context.parameters.get("run_id").map({ MLflowAPI.percentDecode(Substring($0), plusIsSpace: false) }) else {
                throw MLflowError(code: "INVALID_PARAMETER_VALUE", message: "Missing run id", status: .badRequest)
            }
            let body = try await collect(request)
            let s = service, limit = maxBody
            let json = try await pool.runIfActive { () throws -> String in
                let now = TrackingService.nowMillis()
                let batch = try body.withUnsafeReadableBytes { bytes in
                    try Self.isBinary(bytes) ? NativeBinary.decode(bytes, limit: limit) : ColumnarJSONParser.parse(bytes, defaultTimestamp: now)
                }
                let r = try s.logColumns(runID: runID, series: batch.series, batchID: batch.batchID)
                return "{\"points\": \(r.points), \"stored\": \(r.stored)}"
            }
            return MLflowAPI.ok(ByteBuffer(string: json))
        }
        router.post(RouterPath(Self.prefix + "/compare")) { request, _ in
            let body = try await collect(request)
            let s = service
            let out = try await pool.runIfActive { () throws -> (body: ByteBuffer, contentType: String) in
                let tree = try JSONParser.parse(Array(body.readableBytesView))
                guard case .object = tree else { throw TrackingError(.invalidParameterValue, "The request body must be a JSON object") }
                let request = try CompareRequest(MLflowRequest(body: tree, query: [:]))
                return CompareRendering.render(try s.compare(request.query), binary: request.binary)
            }
            return Response(status: .ok, headers: [.contentType: out.contentType], body: .init(byteBuffer: out.body))
        }
    }

    private func collect(_ request: Request) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: maxBody)
        } catch is NIOTooManyBytesError {
            throw MLflowError(code: "BAD_REQUEST", message: "The request body exceeds the limit of \(maxBody) bytes for \(request.uri.path)",
                              status: .contentTooLarge)
        }
    }

    static func isBinary(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 4 && b[0] == NativeBinary.magic[0] && b[1] == NativeBinary.magic[1] && b[2] == NativeBinary.magic[2] && b[3] == NativeBinary.magic[3]
    }
}
