import CZstd
import Synchronization

/// How a span's JSON is kept in the `spans` table's `content` column (docs/otlp.md, "How a span is stored"): one tag
/// byte, then the text — `0` as UTF-8, `1` as one zstd frame (level 3) compressed against ``dictionary``, a fixed
/// text of what MLflow's span dicts share (their keys, MLflow's attribute names and values, OpenTelemetry's status
/// codes). Whichever is shorter is written. The dictionary is part of the format: it never changes; another would
/// take another tag.
enum SpanContentCodec {
    /// A stored content that cannot be read back.
    struct Corrupt: Error, CustomStringConvertible {
        /// Where, and what is wrong.
        let description: String
    }

    /// The dictionary of tag `1`: raw content (zstd's "raw content dictionary"), the most telling text last.
    static let dictionary: [UInt8] = Array(#"""
        "exception.message": "exception.type": "exception.stacktrace": "exception.escaped": "False" "mlflow.spanLogLevel": "20"
        "mlflow.chat.tools": "mlflow.message.format": "mlflow.llm.model": "mlflow.llm.provider": "mlflow.llm.cost":
        "gen_ai.request.model": "gen_ai.usage.input_tokens": "gen_ai.usage.output_tokens": "gen_ai.operation.name":
        "\"CHAT_MODEL\"" "\"RETRIEVER\"" "\"EMBEDDING\"" "\"RERANKER\"" "\"PARSER\"" "\"UNKNOWN\"" "\"AGENT\"" "\"TOOL\"" "\"CHAIN\""
        {\"role\": \"system\", \"content\": \"  {\"role\": \"assistant\", \"content\": \" \"tool_calls\": [{\"id\": \"call_\",
        \"type\": \"function\", \"function\": {\"name\": \" \"arguments\": \"{\\\" {\"choices\": [{\"index\": 0, \"message\":
        {\"input_tokens\": , \"output_tokens\": , \"total_tokens\": }
        "links": [{"trace_id": "tr-", "span_id": "", "attributes": null}]}
        {"trace_id": "", "span_id": "", "parent_span_id": null, "name": "", "start_time_unix_nano": 17, "end_time_unix_nano": 17,
        "events": [{"name": "exception", "time_unix_nano": 17, "attributes": {}}], "status": {"code": "STATUS_CODE_ERROR", "message": ""},
        "attributes": {"mlflow.traceRequestId": "\"tr-", "mlflow.spanType": "\"LLM\"", "mlflow.spanFunctionName": "\"",
        "mlflow.spanInputs": "{\"messages\": [{\"role\": \"user\", \"content\": \"", "mlflow.spanOutputs": "\"",
        "mlflow.chat.tokenUsage": "{\"input_tokens\": "}, "links": []}
        {"trace_id": "", "span_id": "", "parent_span_id": "", "name": "", "start_time_unix_nano": 17, "end_time_unix_nano": 17,
        "events": [], "status": {"code": "STATUS_CODE_OK", "message": ""}, "attributes": {"mlflow.traceRequestId": "\"tr-",
        "mlflow.spanType": "\"", "mlflow.spanFunctionName": "\"", "mlflow.spanInputs": "{\"", "mlflow.spanOutputs": "\""}, "links": []}
        """#.utf8)

    private final class Dictionaries: @unchecked Sendable {  // read-only once made: zstd lets threads share them
        let compress: OpaquePointer
        let decompress: OpaquePointer
        init() {
            compress = dictionary.withUnsafeBytes { ZSTD_createCDict($0.baseAddress, $0.count, 3) }
            decompress = dictionary.withUnsafeBytes { ZSTD_createDDict($0.baseAddress, $0.count) }
        }
    }
    private static let dictionaries = Dictionaries()

    /// zstd contexts of one kind, kept for reuse (making one per span costs more than compressing it): taken by one
    /// thread at a time, at most ``kept`` of them kept.
    private final class Contexts: Sendable {
        private let free = Mutex<[UInt]>([])  // the idle contexts' addresses
        private let make: @Sendable () -> OpaquePointer?
        private let release: @Sendable (OpaquePointer) -> Void
        static let kept = 16

        init(make: @escaping @Sendable () -> OpaquePointer?, release: @escaping @Sendable (OpaquePointer) -> Void) {
            self.make = make
            self.release = release
        }

        func with<R>(_ body: (OpaquePointer) throws -> R) rethrows -> R {
            let c = free.withLock { $0.popLast() }.flatMap { OpaquePointer(bitPattern: $0) } ?? make()!
            defer {
                let kept = free.withLock { idle in
                    guard idle.count < Self.kept else { return false }
                    idle.append(UInt(bitPattern: c))
                    return true
                }
                if !kept { release(c) }
            }
            return try body(c)
        }
    }
    private static let compressing = Contexts(make: { ZSTD_createCCtx() }, release: { ZSTD_freeCCtx($0) })
    private static let decompressing = Contexts(make: { ZSTD_createDCtx() }, release: { ZSTD_freeDCtx($0) })

    /// The stored form of a span's JSON.
    static func encode(_ text: String) -> [UInt8] {
        var text = text
        return text.withUTF8 { raw -> [UInt8] in
            let bound = ZSTD_compressBound(raw.count)
            var out = [UInt8](repeating: 1, count: 1 + bound)
            let n = compressing.with { cctx in
                out.withUnsafeMutableBytes { o in
                    ZSTD_compress_usingCDict(cctx, o.baseAddress! + 1, bound, raw.baseAddress, raw.count, dictionaries.compress)
                }
            }
            guard ZSTD_isError(n) == 0, n < raw.count else { return [0] + Array(raw) }
            out.removeSubrange((1 + n)...)
            return out
        }
    }

    /// A span's JSON from its stored form; `where` names the row for the error.
    static func decode(_ bytes: [UInt8], where row: @autoclosure () -> String) throws -> String {
        guard let tag = bytes.first else { throw Corrupt(description: "\(row()): empty content") }
        switch tag {
        case 0:
            guard let s = String(validating: bytes[1...], as: UTF8.self) else { throw Corrupt(description: "\(row()): content is not UTF-8") }
            return s
        case 1:
            return try bytes.withUnsafeBytes { b -> String in
                let frame = UnsafeRawBufferPointer(rebasing: b[1...])
                let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
                guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN else {
                    throw Corrupt(description: "\(row()): content is not a zstd frame of known size (\(frame.count) bytes)")
                }
                guard size <= UInt64(TrackingService.maxExportSpanBytes) else {  // no span is stored larger: a damaged size
                    throw Corrupt(description: "\(row()): content says it holds \(size) bytes")
                }
                var out = [UInt8](repeating: 0, count: Int(size))
                let n = decompressing.with { dctx in
                    out.withUnsafeMutableBytes { o in
                        ZSTD_decompress_usingDDict(dctx, o.baseAddress, o.count, frame.baseAddress, frame.count, dictionaries.decompress)
                    }
                }
                guard ZSTD_isError(n) == 0, n == Int(size), let s = String(validating: out, as: UTF8.self) else {
                    throw Corrupt(description: "\(row()): content does not decompress (\(frame.count) bytes)")
                }
                return s
            }
        default:
            throw Corrupt(description: "\(row()): content of unknown form \(tag)")
        }
    }
}
