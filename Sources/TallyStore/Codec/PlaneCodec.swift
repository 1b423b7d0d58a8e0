import CLZ4
import CZstd
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Compresses and decompresses byte planes. Holds zstd contexts, so create one per thread or operation.
///
/// Plane layout inside a chunk: `method: u8`, `storedLength: u32`, then `storedLength` bytes. The decoded
/// length is implied by the column header, so it is not repeated.
@usableFromInline
final class PlaneCodec {
    private var cctx: OpaquePointer?
    private var dctx: OpaquePointer?

    @usableFromInline init() {}

    deinit {
        if let cctx { ZSTD_freeCCtx(cctx) }
        if let dctx { ZSTD_freeDCtx(dctx) }
    }

    /// Appends one encoded plane to `w`.
    func encode(_ plane: UnsafeRawBufferPointer, compression: Compression, into w: inout ByteWriter) throws {
        let n = plane.count
        if n > 0, isConstant(plane) {
            w.write(PlaneMethod.constant.rawValue)
            w.write(UInt32(1))
            w.write(plane[0])
            return
        }
        let headerAt = w.count
        w.write(UInt8(0))
        w.write(UInt32(0))
        var method = PlaneMethod.raw
        var stored = 0
        switch compression {
        case .none:
            break
        case .zstd(let level) where n >= 32:
            if cctx == nil { cctx = ZSTD_createCCtx() }
            let bound = ZSTD_compressBound(n)
            stored = try w.withUnsafeAppendingSpace(bound) { out in
                let r = ZSTD_compressCCtx(cctx, out.baseAddress, bound, plane.baseAddress, n, level)
                if ZSTD_isError(r) != 0 {
                    throw StorageError(.compression, "zstd: " + String(cString: ZSTD_getErrorName(r)))
                }
                return r < n ? (r, r) : (0, 0)
            }
            if stored > 0 { method = .zstd }
        case .lz4 where n >= 32:
            let bound = Int(LZ4_compressBound(Int32(n)))
            stored = w.withUnsafeAppendingSpace(bound) { out in
                let r = Int(LZ4_compress_default(
                    plane.baseAddress!.assumingMemoryBound(to: CChar.self), out.baseAddress!.assumingMemoryBound(to: CChar.self),
                    Int32(n), Int32(bound)))
                return r > 0 && r < n ? (r, r) : (0, 0)
            }
            if stored > 0 { method = .lz4 }
        default:
            break
        }
        if method == .raw {
            w.write(bytes: plane)
            stored = n
        }
        w.patch(method.rawValue, at: headerAt)
        w.patch(UInt32(stored), at: headerAt + 1)
    }

    /// Decodes `width` planes of `count` bytes each, one after another (the layout ``BytePlanes/shuffle`` makes).
    func decodePlanes(_ r: inout ByteReader, count: Int, width: Int) throws -> [UInt8] {
        var buffer = [UInt8](unsafeUninitializedCapacity: count * width) { _, c in c = count * width }  // every plane fills its part
        try buffer.withUnsafeMutableBytes { pl in
            for k in 0..<width {
                try decode(&r, count: count, into: UnsafeMutableRawBufferPointer(rebasing: pl[(k * count)..<((k + 1) * count)]))
            }
        }
        return buffer
    }

    /// Decodes one plane of `count` bytes from `r` into `out`.
    func decode(_ r: inout ByteReader, count: Int, into out: UnsafeMutableRawBufferPointer) throws {
        let methodByte = try r.read(UInt8.self, "plane method")
        let stored = Int(try r.read(UInt32.self, "plane length"))
        let at = r.offset
        let range = try r.skip(stored, "plane bytes")
        guard count <= Int(Int32.max) else { throw r.corrupt("plane of \(count) bytes") }
        guard let method = PlaneMethod(rawValue: methodByte) else {
            throw StorageError(.corrupt, "unknown plane method \(methodByte)", offset: r.baseOffset + Int64(at - 5))
        }
        if count == 0 { return }
        try r.bytes.withUnsafeBytes { all in
            let src = UnsafeRawBufferPointer(rebasing: all[range])
            switch method {
            case .constant:
                guard stored == 1 else { throw r.corrupt("constant plane with \(stored) bytes") }
                out.baseAddress!.initializeMemory(as: UInt8.self, repeating: src[0], count: count)
            case .raw:
                guard stored == count else { throw r.corrupt("raw plane of \(stored) bytes, expected \(count)") }
                out.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: count)
            case .zstd:
                if dctx == nil { dctx = ZSTD_createDCtx() }
                let n = ZSTD_decompressDCtx(dctx, out.baseAddress, count, src.baseAddress, stored)
                guard ZSTD_isError(n) == 0, n == count else {
                    let why = ZSTD_isError(n) != 0 ? String(cString: ZSTD_getErrorName(n)) : "\(n) bytes, expected \(count)"
                    throw StorageError(.corrupt, "zstd plane does not decode: \(why)", offset: r.baseOffset + Int64(at))
                }
            case .lz4:
                let n = LZ4_decompress_safe(
                    src.baseAddress!.assumingMemoryBound(to: CChar.self), out.baseAddress!.assumingMemoryBound(to: CChar.self),
                    Int32(stored), Int32(count))
                guard n == count else {
                    throw StorageError(.corrupt, "lz4 plane does not decode (\(n))", offset: r.baseOffset + Int64(at))
                }
            }
        }
    }

    private func isConstant(_ p: UnsafeRawBufferPointer) -> Bool {
        let first = p[0]
        var i = 1
        while i < p.count {
            if p[i] != first { return false }
            i &+= 1
        }
        return true
    }
}

/// Byte-plane shuffling and a cheap order-0 entropy estimate used to choose transforms.
@usableFromInline
enum BytePlanes {
    /// Splits `count` little-endian words of `width` bytes into `width` planes laid out one after another in `dst`.
    @inlinable static func shuffle(_ src: UnsafeRawPointer, count: Int, width: Int, into dst: UnsafeMutableRawPointer) {
        let s = src.assumingMemoryBound(to: UInt8.self)
        let d = dst.assumingMemoryBound(to: UInt8.self)
        for k in 0..<width {
            let plane = d + k &* count
            var i = 0
            var p = s + k
            while i < count {
                plane[i] = p.pointee
                p += width
                i &+= 1
            }
        }
    }

    /// Estimated stored size in bytes of the shuffled planes of a sample, by order-0 entropy per plane.
    static func estimatedSize(_ words: UnsafeRawPointer, count: Int, width: Int) -> Double {
        var total = 0.0
        var hist = [Int](repeating: 0, count: 256)
        let s = words.assumingMemoryBound(to: UInt8.self)
        for k in 0..<width {
            for j in 0..<256 { hist[j] = 0 }
            var p = s + k
            for _ in 0..<count {
                hist[Int(p.pointee)] &+= 1
                p += width
            }
            var bits = 0.0
            let n = Double(count)
            for c in hist where c > 0 {
                let q = Double(c) / n
                bits -= Double(c) * log2(q)
            }
            total += min(bits / 8 + 16, n)  // a small allowance for the entropy coder's tables
        }
        return total
    }
}

