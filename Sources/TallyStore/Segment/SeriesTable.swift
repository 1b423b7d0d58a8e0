/// A segment's series index as held in memory: keys sorted bytewise in one buffer and found by binary search, each
/// series' seal watermark, and where its points are (blocks, or a slot in a pack). A packed series costs its key
/// bytes and about 30 bytes, so a run of thousands of short series keeps a small index per segment.
struct SeriesTable: Sendable {
    private var keyBytes: [UInt8] = []
    /// End offset of key `i` in `keyBytes` (its start is the previous end).
    private var keyEnds: [UInt32] = []
    /// Seal watermarks; LSN 0 means none.
    private var walLSN: [UInt64] = []
    private var walIndex: [UInt32] = []
    /// `>= 0`: index into `dense`; `< 0`: `-1 - i` for slot `i` in `slots`.
    private var place: [Int32] = []
    private var dense: [[BlockMeta]] = []
    /// Pack index in the high 32 bits, ordinal in the low 32.
    private var slots: [UInt64] = []

    /// Number of series.
    var count: Int { keyEnds.count }

    /// Memory held, by capacity (block index entries at their stride).
    var bytes: Int {
        keyBytes.capacity + keyEnds.capacity * 4 + walLSN.capacity * 8 + walIndex.capacity * 4 + place.capacity * 4 + slots.capacity * 8
            + dense.reduce(dense.capacity * 8) { $0 + 32 + $1.capacity * MemoryLayout<BlockMeta>.stride }
    }

    /// Builds the table from decoded footer entries, in bytewise key order.
    init(_ series: [SeriesIndex]) {
        let order = series.indices.sorted { a, b in KeyOrder.less(series[a].key, series[b].key) }
        keyBytes.reserveCapacity(series.reduce(0) { $0 + $1.key.utf8.count })
        keyEnds.reserveCapacity(series.count)
        for i in order {
            let s = series[i]
            keyBytes.append(contentsOf: s.key.utf8)
            keyEnds.append(UInt32(keyBytes.count))
            walLSN.append(s.wal?.lsn ?? 0)
            walIndex.append(s.wal?.index ?? 0)
            if let slot = s.packed {
                place.append(Int32(-1 - slots.count))
                slots.append(UInt64(slot.pack) << 32 | UInt64(slot.ordinal))
            } else {
                place.append(Int32(dense.count))
                dense.append(s.blocks)
            }
        }
    }

    private func range(_ i: Int) -> Range<Int> { (i == 0 ? 0 : Int(keyEnds[i - 1]))..<Int(keyEnds[i]) }

    /// The position of `key`, or `nil` when the segment has no such series.
    func find(_ key: String) -> Int? {
        var key = key
        return key.withUTF8 { k in
            keyBytes.withUnsafeBufferPointer { all in
                var lo = 0, hi = count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    let c = KeyOrder.compare(UnsafeBufferPointer(rebasing: all[range(mid)]), k)
                    if c == 0 { return mid }
                    if c < 0 { lo = mid + 1 } else { hi = mid }
                }
                return nil
            }
        }
    }

    /// The key of series `i`.
    func key(_ i: Int) -> String { String(decoding: keyBytes[range(i)], as: UTF8.self) }

    /// Every key, in table order.
    var keys: [String] { (0..<count).map(key) }

    /// The blocks of series `i` (empty when it is packed).
    func blocks(_ i: Int) -> [BlockMeta] { place[i] >= 0 ? dense[Int(place[i])] : [] }

    /// Where packed series `i` sits, `nil` when it has blocks.
    func slot(_ i: Int) -> PackSlot? {
        guard place[i] < 0 else { return nil }
        let s = slots[Int(-1 - place[i])]
        return PackSlot(pack: Int(s >> 32), ordinal: Int(s & 0xFFFF_FFFF))
    }

    /// The seal watermark of series `i`.
    func wal(_ i: Int) -> WALPosition? { walLSN[i] == 0 ? nil : WALPosition(lsn: walLSN[i], index: walIndex[i]) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
