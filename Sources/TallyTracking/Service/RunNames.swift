/// MLflow-style generated run names: `adjective-animal-NNN`.
enum RunNames {
    static let adjectives = ["able", "bold", "brave", "bright", "calm", "clean", "clever", "cool", "crisp", "dapper", "eager",
                             "fast", "fine", "gentle", "glad", "grand", "honest", "keen", "kind", "lively", "lucky", "merry",
                             "nimble", "polite", "proud", "quick", "quiet", "sharp", "silent", "smart", "sunny", "swift",
                             "tidy", "valiant", "warm", "wise", "zealous"]
    static let animals = ["ant", "bass", "bat", "bear", "bee", "cat", "colt", "crab", "crane", "deer", "doe", "dove", "eel",
                          "elk", "finch", "fox", "frog", "goat", "gull", "hare", "hawk", "hen", "jay", "koi", "lark", "lynx",
                          "mink", "mole", "moth", "newt", "owl", "perch", "pig", "ram", "seal", "shrew", "snail", "swan",
                          "toad", "trout", "wasp", "whale", "wolf", "wren", "yak"]

    static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        return "\(adjectives.randomElement(using: &rng)!)-\(animals.randomElement(using: &rng)!)-\(Int.random(in: 0..<1000, using: &rng))"
    }

    /// A random version-4 UUID as 32 lowercase hex characters (two draws from the system generator, not sixteen:
    /// byte-wise draws and a string per byte were 3 % of run creation's CPU).
    static func runID() -> String {
        var rng = SystemRandomNumberGenerator()
        var words = (rng.next() as UInt64, rng.next() as UInt64)
        return withUnsafeMutableBytes(of: &words) { raw in
            raw[6] = (raw[6] & 0x0F) | 0x40
            raw[8] = (raw[8] & 0x3F) | 0x80
            return Secrets.hex(raw)
        }
    }
}
