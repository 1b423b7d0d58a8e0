import Hummingbird
import NIOCore
import TallyStore
import TallyTracking

/// An error answered in MLflow's format: `{"error_code": …, "message": …}` with MLflow's HTTP status (client
/// mistakes are always 4xx).
struct MLflowError: HTTPResponseError {
    let code: String
    let message: String
    let status: HTTPResponse.Status

    init(_ e: TrackingError) {
        code = e.code.rawValue
        message = e.message
        switch e.code {
        case .invalidParameterValue, .resourceAlreadyExists, .badRequest: status = .badRequest
        case .invalidState: status = .badRequest  // MLflow answers 500; a client mistake is 4xx here
        case .resourceDoesNotExist: status = .notFound
        case .internalError: status = .internalServerError
        }
    }

    init(code: String, message: String, status: HTTPResponse.Status) {
        self.code = code
        self.message = message
        self.status = status
    }

    static func from(_ error: any Error) -> MLflowError {
        switch error {
        case let e as MLflowError: return e
        case let e as TrackingError: return MLflowError(e)
        case let e as JSONSyntaxError:
            return MLflowError(code: "MALFORMED_REQUEST", message: "Malformed JSON request body at byte \(e.offset): \(e.message)", status: .badRequest)
        case let e as NativeBodyError:
            return MLflowError(code: "INVALID_PARAMETER_VALUE", message: e.description, status: .badRequest)
        case is NIOTooManyBytesError:
            return MLflowError(code: "BAD_REQUEST", message: "The request body is too large", status: .contentTooLarge)
        case let e as StorageError:
            return MLflowError(code: "INTERNAL_ERROR", message: "storage error: \(e)", status: .internalServerError)
        case let e as HTTPError:
            let code = e.status == .notFound ? "ENDPOINT_NOT_FOUND" : (e.status.code < 500 ? "BAD_REQUEST" : "INTERNAL_ERROR")
            return MLflowError(code: code, message: e.body ?? "\(e.status)", status: e.status)
        default:
            return MLflowError(code: "INTERNAL_ERROR", message: "\(error)", status: .internalServerError)
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var o = Obj()
        o.add("error_code", code)
        o.add("message", message)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: o.json)))
    }
}
