import CZlib

/// zlib's inflate for compressed request bodies: gzip (every member of a multi-member file, as Python's
/// `gzip.decompress` reads them) and deflate (zlib-wrapped, or raw as some clients send it). Output beyond `limit`
/// bytes stops the work (``Inflate/Failure/tooLarge``): a small body cannot make the server hold gigabytes.
enum Inflate {
    /// Why a body could not be inflated.
    enum Failure: Error, Equatable {
        /// Not a valid (or a truncated) stream of the format.
        case corrupt
        /// More than the limit once inflated.
        case tooLarge
    }

    /// A gzip body.
    static func gzip(_ body: [UInt8], limit: Int) throws -> [UInt8] {
        try run(body, windowBits: 16 + MAX_WBITS, limit: limit, members: true)
    }

    /// A deflate body: zlib's format, else a raw deflate stream.
    static func deflate(_ body: [UInt8], limit: Int) throws -> [UInt8] {
        do { return try run(body, windowBits: MAX_WBITS, limit: limit, members: false) } catch Failure.corrupt {
            return try run(body, windowBits: -MAX_WBITS, limit: limit, members: false)
        }
    }

    private static func run(_ body: [UInt8], windowBits: Int32, limit: Int, members: Bool) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw Failure.corrupt }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        return try body.withUnsafeBufferPointer { input -> [UInt8] in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = UInt32(input.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { c -> (Int32, Int) in
                    stream.next_out = c.baseAddress
                    stream.avail_out = UInt32(c.count)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return (status, c.count - Int(stream.avail_out))
                }
                out.append(contentsOf: chunk[0..<produced])
                guard out.count <= limit else { throw Failure.tooLarge }
                switch status {
                case Z_STREAM_END:
                    // Another gzip member may follow; anything else after the stream is ignored, as Python does.
                    guard members, stream.avail_in > 0, stream.next_in.pointee == 0x1F else { return out }
                    guard inflateReset(&stream) == Z_OK else { throw Failure.corrupt }
                case Z_OK:
                    if stream.avail_in == 0 && produced == 0 { throw Failure.corrupt }  // truncated: no more input, no end
                case Z_BUF_ERROR:
                    throw Failure.corrupt
                default:
                    throw Failure.corrupt
                }
            }
        }
    }
}
