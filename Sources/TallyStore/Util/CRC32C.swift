import CTallyShims

/// CRC32C (Castagnoli) checksums, hardware-accelerated where the CPU allows.
public enum CRC32C {
    /// The CRC32C of `bytes`, continuing from `seed` (0 to start).
    @inlinable public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        tally_crc32c(seed, bytes.baseAddress, bytes.count)
    }

    /// The CRC32C of a slice of a byte array.
    @inlinable public static func checksum(_ bytes: ArraySlice<UInt8>, seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }

    /// The CRC32C of a byte array.
    @inlinable public static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }
}
