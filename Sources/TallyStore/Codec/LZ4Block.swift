import CLZ4

/// Whole-buffer LZ4 block compression (the caller records the original length).
enum LZ4Block {
    /// The compressed bytes, or `nil` when lz4 fails.
    static func compress(_ input: [UInt8]) -> [UInt8]? {
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        var ok = true
        let out = [UInt8](unsafeUninitializedCapacity: bound) { buf, n in
            let r = input.withUnsafeBytes { src in
                LZ4_compress_default(src.baseAddress!.assumingMemoryBound(to: CChar.self),
                                     UnsafeMutableRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self),
                                     Int32(input.count), Int32(bound))
            }
            ok = r > 0
            n = max(0, Int(r))
        }
        return ok ? out : nil
    }

    /// Decompresses exactly `rawLength` bytes, or returns `nil` for malformed input.
    static func decompress(_ input: ArraySlice<UInt8>, rawLength: Int) -> [UInt8]? {
        var ok = true
        let out = [UInt8](unsafeUninitializedCapacity: rawLength) { buf, n in
            let r = input.withUnsafeBytes { src in
                LZ4_decompress_safe(src.baseAddress!.assumingMemoryBound(to: CChar.self),
                                    UnsafeMutableRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self),
                                    Int32(input.count), Int32(rawLength))
            }
            ok = Int(r) == rawLength
            n = ok ? rawLength : 0
        }
        return ok ? out : nil
    }
}
