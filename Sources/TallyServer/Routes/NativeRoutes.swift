import Hummingbird
import NIOCore
import TallyStore
import TallyTracking

/// Tally's own API, mounted at `/api/tally/v1`: columnar ingest and compare queries. Run ids, keys and points are
/// the ones MLflow's API sees.
struct NativeRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, pool = endpoints.pool, limit = endpoints.nativeBody
        // Binary (`TLYC`) or columnar JSON bodies: the content type is not checked, the body's magic decides.
        t.on("runs/:run_id/metrics", .post, access: .needs(.update, .runPath("run_id"))) { request, context in
            let runID = Endpoints.parameter("run_id", context)
            let body = try await endpoints.body(request, limit: limit)
            do {
                let json = try await pool.run { () throws -> String in
                    let batch = try body.withUnsafeReadableBytes { bytes in
                        try Self.isBinary(bytes) ? NativeBinary.decode(bytes, limit: limit) : ColumnarJSONParser.parse(bytes, defaultTimestamp: s.now())
                    }
                    let r = try s.logColumns(runID: runID, series: batch.series, batchID: batch.batchID)
                    return "{\"points\": \(r.points), \"stored\": \(r.stored)}"
                }
                return Endpoints.ok(json)
            } catch let owner as OwnedElsewhere {
                return try await endpoints.forward(owner, request, body: body, context: context)
            }
        }
        t.on("compare", .post, access: .user) { request, context in
            let out = try await endpoints.object(request, context) { r -> (body: ByteBuffer, contentType: String) in
                let q = try CompareRequest(r)
                return CompareRendering.render(try s.compare(q.query, scope: r.grants), binary: q.binary)
            }
            return Response(status: .ok, headers: [.contentType: out.contentType], body: .init(byteBuffer: out.body))
        }
    }

    /// `POST scoreboard`.
    func addScoreboard(to t: RouteTable) {
        let s = endpoints.service
        t.on("scoreboard", .post, access: .user) { request, context in
            Endpoints.ok(try await endpoints.object(request, context) { r in
                ScoreboardRendering.render(try s.scoreboard(ScoreboardQuery(r), scope: r.grants))
            } as [ByteBuffer])
        }
    }

    static func isBinary(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 4 && b[0] == NativeBinary.magic[0] && b[1] == NativeBinary.magic[1] && b[2] == NativeBinary.magic[2] && b[3] == NativeBinary.magic[3]
    }
}
