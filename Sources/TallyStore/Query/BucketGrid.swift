/// Splits an inclusive step range into `count` buckets of (almost) equal width, exactly, for any Int64 range.
///
/// Bucket `p` holds the steps `s` with `floor((s - lo) * count / width) == p`, where `width = hi - lo + 1`
/// (computed in 128 bits, so the full Int64 range works).
struct BucketGrid {
    let lo: Int64
    let hi: Int64
    let count: Int
    /// `hi - lo` as unsigned (width − 1, so the full range fits).
    let span: UInt64

    init(lo: Int64, hi: Int64, count: Int) {
        precondition(lo <= hi && count > 0)
        self.lo = lo
        self.hi = hi
        self.span = UInt64(bitPattern: hi &- lo)
        self.count = span == .max ? count : Int(min(UInt64(count), span &+ 1))
    }

    /// The bucket of step `s` (which must lie in `lo...hi`).
    @inline(__always) func bucket(of s: Int64) -> Int {
        let off = UInt64(bitPattern: s &- lo)
        let prod = off.multipliedFullWidth(by: UInt64(count))
        if span == .max { return Int(prod.high) }  // width 2^64
        let width = span &+ 1
        return Int(width.dividingFullWidth((high: prod.high, low: prod.low)).quotient)
    }

    /// The first step of bucket `p` (`p == count` gives `hi + 1`, wrapping only for the full range).
    func start(of p: Int) -> Int64 {
        if p == 0 { return lo }
        // ceil(p * width / count)
        let num: (high: UInt64, low: UInt64)
        if span == .max {
            num = (UInt64(p), 0)
        } else {
            let m = (span &+ 1).multipliedFullWidth(by: UInt64(p))
            num = (m.high, m.low)
        }
        let c = UInt64(count)
        let (q, r) = c.dividingFullWidth(num)
        return lo &+ Int64(bitPattern: r == 0 ? q : q &+ 1)
    }

    /// Inclusive step range of bucket `p`.
    func range(of p: Int) -> (Int64, Int64) {
        (start(of: p), p + 1 == count ? hi : start(of: p + 1) &- 1)
    }
}
