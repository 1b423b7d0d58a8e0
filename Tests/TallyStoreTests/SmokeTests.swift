import Testing
@testable import TallyStore

@Test func crcKnownValue() {
    // RFC 3720 check value for "123456789".
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
}
