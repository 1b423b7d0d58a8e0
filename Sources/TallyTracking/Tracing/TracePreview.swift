/// A trace's request and response previews as MLflow's server derives them from its root span's inputs and outputs
/// (`_get_truncated_preview`): the text of the last chat message of the role (user for the request, assistant for
/// the response) when the value holds chat messages in one of OpenAI's shapes, else the stored value itself; at most
/// 1,000 characters (`…997 characters` + `...`).
enum TracePreview {
    /// The longest preview (MLflow's `TRACE_REQUEST_RESPONSE_PREVIEW_MAX_LENGTH_OSS`).
    static let maxLength = 1000

    /// Both previews from the stored (JSON text) inputs and outputs. A value MLflow fails on (a message text part that
    /// is not a string) leaves that preview, and for the request the response too, unset — as MLflow's one `try` does.
    static func previews(inputs: String?, outputs: String?) -> (request: String?, response: String?) {
        guard let request = preview(inputs, role: "user") else { return (nil, nil) }
        return (request, preview(outputs, role: "assistant") ?? nil)
    }

    /// Both previews from the root span's inputs and outputs as its attributes hold them: stored JSON text, or a value
    /// a span event gave (an object is previewed as its `json.dumps`; a number or bool fails as above). A list of at
    /// most 1,000 items is refused (`BAD_REQUEST`): MLflow would write the list itself as the preview, which its
    /// database refuses.
    static func previews(inputs: JSONValue?, outputs: JSONValue?) throws -> (request: String?, response: String?) {
        func text(_ v: JSONValue?, role: String) throws -> String?? {
            guard let v, v.pythonTruthy else { return .some(nil) }
            switch v {
            case .string(let s): return .some(s)
            case .object: return .some(v.pythonDumps())
            case .array(let items):
                if items.count <= maxLength {
                    throw TrackingError(.badRequest, "A span's \(role == "user" ? "inputs" : "outputs") from its events are a list, which cannot be the trace's preview")
                }
                return nil
            default: return nil
            }
        }
        guard let request = try text(inputs, role: "user") else { return (nil, nil) }
        guard let response = try text(outputs, role: "assistant") else { return (previews(inputs: request, outputs: nil).request, nil) }
        return previews(inputs: request, outputs: response)
    }

    /// A preview: `.some(nil)` when there is no value; `nil` when MLflow would fail on it.
    static func preview(_ stored: String?, role: String) -> String??  {
        guard let stored, !stored.isEmpty else { return .some(nil) }
        var content: String?
        if let obj = try? JSONParser.parse(Array(stored.utf8)), let messages = messages(obj), !messages.isEmpty {
            let message = messages.last { $0["role"] == .string(role) } ?? messages[messages.count - 1]
            switch text(of: message) {
            case .some(.some(let t)): content = t
            case .some(.none): content = nil
            case .none: return nil
            }
        }
        let text = (content?.isEmpty == false ? content : nil) ?? stored
        return .some(text.unicodeScalars.count <= maxLength ? text : text.prefix(codePoints: maxLength - 3) + "...")
    }

    /// `_try_extract_messages`: the chat messages of a request or response object, `nil` when it holds none.
    static func messages(_ obj: JSONValue) -> [JSONValue]? {
        guard case .object = obj else { return nil }
        let members = obj.pythonMembers
        func member(_ key: String) -> JSONValue? { members.last { $0.0 == key }?.1 }
        if let m = member("messages"), case .array(let items) = m, !items.isEmpty { return items.filter(isMessage) }
        if let c = member("choices"), case .array(let items) = c, let first = items.first, case .object = first,
           let msg = first["message"], msg.pythonTruthy, isMessage(msg) {
            return [msg]
        }
        if let i = member("input"), case .array(let items) = i, !items.isEmpty { return items.filter(isMessage) }
        if let o = member("output"), case .array(let items) = o, !items.isEmpty { return items.filter(isMessage) }
        if let r = member("request") { return messages(r) }
        return nil
    }

    /// A dict with `role` and `content`.
    static func isMessage(_ v: JSONValue) -> Bool {
        guard case .object = v else { return false }
        return v["role"] != nil && v["content"] != nil
    }


    /// `_get_text_content_from_message`: `.some(text)`, `.some(nil)` (a text part without text: the stored value is
    /// used), or `nil` when the part's text is not a string (MLflow fails).
    static func text(of message: JSONValue) -> String?? {
        switch message["content"] {
        case .string(let s)?: return .some(s)
        case .array(let parts)?:
            for part in parts {
                if case .string(let s) = part { return .some(s) }
                if case .object = part, let type = part["type"], type == .string("text") || type == .string("output_text") {
                    switch part["text"] {
                    case nil, .null?: return .some(nil)
                    case .string(let s)?: return .some(s)
                    default: return part["text"]!.pythonTruthy ? nil : .some(nil)
                    }
                }
            }
            return .some("")
        default: return .some("")
        }
    }
}
