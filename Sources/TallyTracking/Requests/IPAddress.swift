#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as bytes, parsed by `inet_pton`: prefix checks for the browser defences' private hosts,
/// and whether it is globally reachable (Python's `ipaddress.is_global`, after unwrapping IPv4 carried in IPv6
/// transition forms, as MLflow checks webhook URLs).
struct IPAddress: Equatable {
    /// 4 or 16 bytes.
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    init?(_ sa: UnsafeMutablePointer<sockaddr>?) {
        guard let sa else { return nil }
        switch Int32(sa.pointee.sa_family) {
        case AF_INET: bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in withUnsafeBytes(of: p.pointee.sin_addr) { Array($0) } }
        case AF_INET6: bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in withUnsafeBytes(of: p.pointee.sin6_addr) { Array($0) } }
        default: return nil
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The address as text (`10.0.0.1`, `fe80::1`).
    var text: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var b = bytes
        _ = inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, &b, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The IPv4 address of an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
    var mappedV4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    /// IPv4 inside an IPv6 transition address (mapped `::ffff:a.b.c.d`, 6to4 `2002:AABB:CCDD::`, NAT64 `64:ff9b::/96`).
    var embeddedV4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        if let v4 = mappedV4 { return v4 }
        if bytes[0] == 0x20 && bytes[1] == 0x02 { return IPAddress(bytes: Array(bytes[2..<6])) }
        if bytes[0..<12] == [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0][...] { return IPAddress(bytes: Array(bytes[12..<16])) }
        return nil
    }

    /// Whether `bytes` starts with the `bits` leading bits of `prefix`.
    func within(_ prefix: [UInt8], _ bits: Int) -> Bool {
        for i in 0..<bits / 8 where bytes[i] != prefix[i] { return false }
        let rest = bits % 8
        guard rest > 0 else { return true }
        let mask = UInt8(0xFF) << (8 - rest)
        return bytes[bits / 8] & mask == prefix[bits / 8] & mask
    }

    /// `::1`.
    static let loopbackV6 = [UInt8](repeating: 0, count: 15) + [1]

    /// IANA's special-purpose ranges that are not globally reachable (those Python's `is_global` rejects).
    static let nonGlobalV4: [([UInt8], Int)] = [
        ([0, 0, 0, 0], 8), ([10, 0, 0, 0], 8), ([100, 64, 0, 0], 10), ([127, 0, 0, 0], 8), ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12), ([192, 0, 0, 0], 24), ([192, 0, 2, 0], 24), ([192, 88, 99, 0], 24), ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15), ([198, 51, 100, 0], 24), ([203, 0, 113, 0], 24), ([224, 0, 0, 0], 4), ([240, 0, 0, 0], 4),
    ]
    static let nonGlobalV6: [([UInt8], Int)] = [
        ([UInt8](repeating: 0, count: 16), 96),  // ::/96: unspecified, loopback, IPv4-compatible
        ([0, 0x64, 0xFF, 0x9B, 0, 1] + [UInt8](repeating: 0, count: 10), 48), ([1, 0] + [UInt8](repeating: 0, count: 14), 64),
        ([0x20, 0x01] + [UInt8](repeating: 0, count: 14), 23), ([0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 12), 32),
        ([0xFC] + [UInt8](repeating: 0, count: 15), 7), ([0xFE, 0x80] + [UInt8](repeating: 0, count: 14), 10),
        ([0xFE, 0xC0] + [UInt8](repeating: 0, count: 14), 10), ([0xFF] + [UInt8](repeating: 0, count: 15), 8),
    ]

    /// Whether the address is globally reachable.
    var isGlobal: Bool {
        if let v4 = embeddedV4 { return v4.isGlobal }
        let ranges = bytes.count == 4 ? Self.nonGlobalV4 : Self.nonGlobalV6
        return !ranges.contains { within($0.0, $0.1) }
    }
}
