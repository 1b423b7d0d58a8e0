import Foundation

/// Model prices in MLflow's model catalog format (a directory of `<provider>.json` files, each
/// `{"models": {"<model>": {"pricing": {"input_per_million_tokens": …}}}}`), from which a span's cost is derived as
/// MLflow derives it without LiteLLM (`calculate_cost_by_model_and_token_usage` and its built-in `cost_per_token`).
/// `tally server --model-prices DIR` loads them; without it no span is priced.
public struct ModelPrices: Sendable {
    /// A model's prices per token, as MLflow flattens a catalog entry (absent: not given).
    struct Price: Sendable {
        var input: Double?
        var output: Double?
        var cacheRead: Double?
        var cacheWrite: Double?
        var cacheWriteOneHour: Double?
    }

    /// Each provider's models, providers in name order (the order a lookup without a provider scans them in).
    let providers: [(name: String, models: [String: Price])]

    /// Why a catalog directory cannot be read: a sentence naming the directory or file.
    public struct LoadError: Error, CustomStringConvertible {
        /// The sentence.
        public var description: String
    }

    /// Prices from catalog files; a directory that cannot be read, or a file that is not a catalog, is refused naming it.
    public init(directory: URL) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory.path) } catch {
            throw LoadError(description: "\(directory.path) is not a directory this server can read")
        }
        let stems = names.filter { $0.hasSuffix(".json") }
            .map { String($0.dropLast(".json".count)) }.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        providers = try stems.map { stem in
            let path = directory.appendingPathComponent(stem + ".json")
            guard let data = try? Data(contentsOf: path) else { throw LoadError(description: "\(path.path) cannot be read") }
            guard let body = try? JSONParser.parse(Array(data)), case .object(let models)? = body["models"] else {
                throw LoadError(description: "\(path.path) is not a model catalog (JSON with a \"models\" object)")
            }
            return (stem, Dictionary(pythonDict(models).map { ($0.0, Self.price($0.1)) }) { _, b in b })
        }
    }

    /// Prices given directly (tests).
    init(providers: [(name: String, models: [String: Price])]) { self.providers = providers }

    /// A catalog entry's per-token prices (its per-million figures divided by a million).
    static func price(_ entry: JSONValue) -> Price {
        func perToken(_ key: String) -> Double? {
            guard let v = entry["pricing"]?[key], let n = PyNumber(v) else { return nil }
            return n.asDouble / 1_000_000
        }
        return Price(input: perToken("input_per_million_tokens"), output: perToken("output_per_million_tokens"),
                     cacheRead: perToken("cache_read_per_million_tokens"), cacheWrite: perToken("cache_write_per_million_tokens"),
                     cacheWriteOneHour: perToken("cache_write_1hr_per_million_tokens"))
    }

    /// A span's cost (`{"input_cost", "output_cost", "total_cost"}` in US dollars) from its model's name and
    /// provider and its token usage (decoded attribute values); `nil` when MLflow would give none.
    func cost(model: JSONValue, usage: JSONValue, provider: JSONValue?) -> JSONValue? {
        guard model.pythonTruthy, usage.pythonTruthy, case .string(let name) = model, case .object = usage else { return nil }
        guard !name.startsWithBytes("gateway:/"), !name.startsWithBytes("endpoints:/") else { return nil }
        var providerName: String?
        switch provider {
        case .string(let p)? where !p.isEmpty: providerName = p.lowercased()
        case let p? where p.pythonTruthy: providerName = nil  // `.lower()` fails; MLflow falls back to the scan
        default: if name.startsWithBytes("databricks-") || name.startsWithBytes("databricks/") { providerName = "databricks" }
        }
        /// A count of the usage: `0` when absent (for a cache count also any value Python finds false: MLflow's
        /// `or 0`); `nil` when not a number (MLflow's arithmetic on it raises, and it gives no cost).
        func count(_ key: String, cache: Bool = true) -> PyNumber? {
            guard let v = usage.pythonMember(key) else { return .int(0) }
            if cache, !v.pythonTruthy { return .int(0) }
            return PyNumber(v)
        }
        guard let prompt = count("input_tokens", cache: false), let completion = count("output_tokens", cache: false) else { return nil }
        if prompt.asDouble == 0, completion.asDouble == 0 { return nil }
        let bare = name.utf8.firstIndex(of: UInt8(ascii: "/")).map { String(name[name.utf8.index(after: $0)...]) } ?? name  // `split("/", 1)[-1]`
        var price: Price?
        if let providerName { price = providers.first { ExactKey.sameBytes($0.name, providerName) }?.models.exact(bare) }
        if price == nil {
            var fallback: Price?
            for p in providers {
                guard let found = p.models.exact(bare) else { continue }
                if let i = found.input, i != 0 { price = found; break }
                if fallback == nil { fallback = found }
            }
            price = price ?? fallback
        }
        guard let price else { return nil }
        guard let read = count("cache_read_input_tokens"), let write = count("cache_creation_input_tokens"),
              let oneHour = count("cache_creation_input_tokens_above_1hr") else { return nil }
        let inRate = price.input ?? 0, outRate = price.output ?? 0
        let cacheRead = read.pythonTruthy ? read : .int(0), cacheWrite = write.pythonTruthy ? write : .int(0)
        let regular = max(prompt.asDouble - cacheRead.asDouble - cacheWrite.asDouble, 0)
        let hour = min((oneHour.pythonTruthy ? oneHour : .int(0)).asDouble, cacheWrite.asDouble)
        let fiveMinutes = cacheWrite.asDouble - hour
        let writeRate = price.cacheWrite ?? inRate
        var input = regular * inRate
        if cacheRead.asDouble > 0 { input += cacheRead.asDouble * (price.cacheRead ?? inRate) }
        if fiveMinutes > 0 { input += fiveMinutes * writeRate }
        if hour > 0 { input += hour * (price.cacheWriteOneHour ?? writeRate) }
        let output = completion.asDouble * outRate
        return .object([("input_cost", PyNumber.float(input).json), ("output_cost", PyNumber.float(output).json),
                        ("total_cost", PyNumber.float(input + output).json)])
    }
}

extension PyNumber {
    /// Python's truth of the number.
    var pythonTruthy: Bool { asDouble != 0 || (asDouble.isNaN) }
}
