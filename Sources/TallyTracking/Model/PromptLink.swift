import Foundation

/// A prompt version linked to a trace (`traces/link-prompts`), named as MLflow names the link in its
/// `entity_associations`: `<prompt name>/<version>`, the version a whole number written without leading zeros. A trace
/// search finds the traces linked to one with `prompt = '<name>/<version>'`.
public enum PromptLink {
    /// The link to version `version` of prompt `name`, each given as the request gives it: the name must be there and
    /// hold no `/` (MLflow's search could never find it), the version a positive whole number (`"07"` is 7).
    /// `field` names the request's element in messages.
    public static func id(name: String?, version: String?, field: String) throws -> String {
        guard let name, !name.isEmpty else { throw Validation.missing(field + ".name") }
        guard !name.contains("/") else {
            throw TrackingError.invalid("Invalid prompt name '\(name)' in \(field).name: a prompt name cannot contain '/'")
        }
        guard let version, !version.isEmpty else { throw Validation.missing(field + ".version") }
        guard let n = Int64(version.trimmingCharacters(in: .whitespaces)), n > 0 else {
            throw TrackingError.invalid("Invalid prompt version '\(version)' in \(field).version: expected a positive integer")
        }
        return name + "/" + String(n)
    }

    /// The prompt name and version of a link, `nil` when it is not `<name>/<version>` with one `/`.
    public static func parts(_ link: String) -> (name: String, version: String)? {
        let p = link.split(separator: "/", omittingEmptySubsequences: false)
        guard p.count == 2 else { return nil }
        return (String(p[0]), String(p[1]))
    }

    /// The links of a trace's `mlflow.linkedPrompts` tag (the client's JSON list), those it can read; none when the tag
    /// is not such a list. An import from an MLflow server, which does not list a trace's links, reads them there.
    public static func fromTag(_ value: String?) -> [String] {
        guard let value, case .array(let list)? = try? JSONParser.parse(Array(value.utf8)) else { return [] }
        return list.compactMap { entry in
            func text(_ k: String) -> String? {
                switch entry[k] {
                case .string(let s)?: s
                case .number(let n)?: n
                default: nil
                }
            }
            return try? id(name: text("name"), version: text("version"), field: "tag")
        }
    }

    /// A search's `prompt` clause names one link: `name/version`, with MLflow's message otherwise.
    static func checkFilterValue(_ v: String) throws {
        guard parts(v) != nil else {
            throw TrackingError.invalid("Invalid prompts filter value '\(v)'. Expected format: prompt = \"name/version\"")
        }
    }

    /// MLflow's message for a `prompt` clause with another comparator than `=`.
    static func invalidFilterComparator(_ op: String) -> TrackingError {
        .invalid("Invalid comparator '\(op)' for prompts filter. Only '=' is supported with format: prompt = \"name/version\"")
    }
}
