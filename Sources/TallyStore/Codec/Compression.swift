/// The general-purpose compressor applied to each byte plane of a column after its transform.
public enum Compression: Sendable, Equatable, CustomStringConvertible {
    /// Planes are stored as they are (constant planes still shrink to one byte).
    case none
    /// LZ4 block compression: fastest to write and read, for hot data.
    case lz4
    /// Zstandard at the given level (1–22; 3 is the usual balance).
    case zstd(level: Int32)

    /// The default for sealed blocks.
    public static let `default` = Compression.zstd(level: 3)

    /// `none`, `lz4` or `zstd:N`.
    public var description: String {
        switch self {
        case .none: "none"
        case .lz4: "lz4"
        case .zstd(let level): "zstd:\(level)"
        }
    }

    /// Parses ``description``'s forms (`zstd` alone means level 3).
    public init?(parsing text: String) {
        switch text {
        case "none", "raw": self = .none
        case "lz4": self = .lz4
        case "zstd": self = .zstd(level: 3)
        default:
            guard text.hasPrefix("zstd:"), let level = Int32(text.dropFirst(5)), (1...22).contains(level) else { return nil }
            self = .zstd(level: level)
        }
    }
}

/// How one plane is stored inside a column chunk. Recorded per plane, so readers need no configuration.
@usableFromInline
enum PlaneMethod: UInt8 {
    case raw = 0
    case zstd = 1
    case lz4 = 2
    /// Every byte of the plane equals the single stored byte.
    case constant = 3
}
