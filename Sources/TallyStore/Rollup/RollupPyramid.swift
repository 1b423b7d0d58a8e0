/// The rollup pyramid of one sealed block: per level, aggregates of fixed, aligned step spans.
///
/// Level 0 buckets span `2^shift0` steps, chosen per block so a bucket holds about `pointsPerBucket`
/// points; each higher level multiplies the span by ``fanOut``. A bucket `k` of a level with shift `s` covers steps
/// `[k << s, ((k + 1) << s) - 1]`. Only non-empty buckets are stored. Levels stop once a level would have a single
/// bucket (the block summary in the segment index is the top). Blocks whose steps lie outside ±2^60 get no pyramid
/// and are answered from raw data.
@usableFromInline
struct RollupPyramid: Sendable {
    /// One level, struct-of-arrays.
    @usableFromInline struct Level: Sendable {
        @usableFromInline var shift: Int
        @usableFromInline var bucket: [Int64] = []
        @usableFromInline var count: [Int64] = []
        @usableFromInline var nan: [Int64] = []
        @usableFromInline var posInf: [Int64] = []
        @usableFromInline var negInf: [Int64] = []
        @usableFromInline var firstStep: [Int64] = []
        @usableFromInline var lastStep: [Int64] = []
        @usableFromInline var minStep: [Int64] = []
        @usableFromInline var maxStep: [Int64] = []
        @usableFromInline var first: [UInt64] = []
        @usableFromInline var last: [UInt64] = []
        @usableFromInline var min: [UInt64] = []
        @usableFromInline var max: [UInt64] = []
        @usableFromInline var sum: [UInt64] = []

        init(shift: Int) { self.shift = shift }

        @usableFromInline var bucketCount: Int { bucket.count }

        mutating func append(_ k: Int64, _ a: Aggregate) {
            bucket.append(k); count.append(a.count); nan.append(a.nan); posInf.append(a.posInf); negInf.append(a.negInf)
            firstStep.append(a.firstStep); lastStep.append(a.lastStep); minStep.append(a.minStep); maxStep.append(a.maxStep)
            first.append(a.firstValue); last.append(a.lastValue); min.append(a.minValue.bitPattern); max.append(a.maxValue.bitPattern)
            sum.append(a.sum.bitPattern)
        }

        @inlinable func aggregate(_ i: Int, order: Int64) -> Aggregate {
            var a = Aggregate()
            a.count = count[i]; a.nan = nan[i]; a.posInf = posInf[i]; a.negInf = negInf[i]
            a.sum = Double(bitPattern: sum[i])
            a.firstStep = firstStep[i]; a.firstValue = first[i]
            a.lastStep = lastStep[i]; a.lastValue = last[i]
            a.minStep = minStep[i]; a.minValue = Double(bitPattern: min[i])
            a.maxStep = maxStep[i]; a.maxValue = Double(bitPattern: max[i])
            a.setOrder(order)
            return a
        }

        /// Index range of stored buckets with `lo <= bucket <= hi`.
        @inlinable func range(_ lo: Int64, _ hi: Int64) -> Range<Int> {
            lowerBound(lo)..<lowerBound(hi &+ 1)
        }

        @inlinable func lowerBound(_ k: Int64) -> Int {
            var l = 0, h = bucket.count
            while l < h {
                let m = (l &+ h) >> 1
                if bucket[m] < k { l = m &+ 1 } else { h = m }
            }
            return l
        }
    }

    /// Levels from finest (index 0) to coarsest.
    @usableFromInline var levels: [Level]

    /// Span fan-out between levels (16 = 2^4).
    static let fanOutShift = 4
    /// Steps beyond this magnitude get no pyramid (keeps all shift arithmetic far from overflow).
    static let stepLimit: Int64 = 1 << 60

    /// Builds the pyramid of a block whose steps are sorted ascending (ties in arrival order).
    static func build(steps: UnsafeBufferPointer<Int64>, values: UnsafeBufferPointer<UInt64>, pointsPerBucket: Int) -> RollupPyramid {
        let n = steps.count
        guard n >= 2, let lo = steps.first, let hi = steps.last, lo > -stepLimit, hi < stepLimit else {
            return RollupPyramid(levels: [])
        }
        let range = Double(hi - lo) + 1
        let wanted = Swift.max(1.0, range / Double(n) * Double(pointsPerBucket))
        var shift = 0
        while Double(Int64(1) << shift) < wanted && shift < 60 { shift += 1 }
        var levels: [Level] = []
        // Level 0 from raw points.
        var level = Level(shift: shift)
        var i = 0
        while i < n {
            let k = steps[i] >> shift
            var a = Aggregate()
            while i < n && steps[i] >> shift == k {
                a.add(step: steps[i], bits: values[i], order: 0)
                i &+= 1
            }
            level.append(k, a)
        }
        // Higher levels from the one below, while they would have more than one bucket.
        while level.bucketCount > 1 {
            levels.append(level)
            let nextShift = level.shift + fanOutShift
            guard nextShift <= 60 else { break }
            var next = Level(shift: nextShift)
            var j = 0
            while j < level.bucketCount {
                let k = level.bucket[j] >> fanOutShift
                var a = Aggregate()
                while j < level.bucketCount && level.bucket[j] >> fanOutShift == k {
                    a.merge(level.aggregate(j, order: 0))
                    j &+= 1
                }
                next.append(k, a)
            }
            level = next
        }
        return RollupPyramid(levels: levels)
    }

    /// Merges into `agg` the points with `lo <= step <= hi`, using the coarsest exact levels and calling
    /// `raw(lo, hi)` for the leftovers at the edges that no whole bucket covers.
    @inlinable
    func cover(_ lo: Int64, _ hi: Int64, level: Int, order: Int64, into agg: inout Aggregate, raw: (Int64, Int64, inout Aggregate) -> Void) {
        guard lo <= hi else { return }
        guard level > 0 else {
            guard level == 0 else {
                raw(lo, hi, &agg)
                return
            }
            // Level 0: a bucket whose points (first to last step) all lie in [lo, hi] is exact even when its nominal
            // span sticks out; one whose points all lie outside adds nothing; only a bucket straddling an edge
            // needs its raw points, and only those in the range.
            let L = levels[0]
            let s = Int64(L.shift)
            for i in L.range(lo >> s, hi >> s) {
                let first = L.firstStep[i], last = L.lastStep[i]
                if first >= lo && last <= hi {
                    agg.merge(L.aggregate(i, order: order))
                } else if last >= lo && first <= hi {
                    raw(max(lo, first), min(hi, last), &agg)
                }
            }
            return
        }
        let L = levels[level]
        let s = Int64(L.shift)
        let span = Int64(1) << s
        // First bucket starting at or after lo; last bucket ending at or before hi.
        let k0 = (lo &+ span &- 1) >> s
        let k1 = ((hi &+ 1) >> s) &- 1
        if k0 <= k1 {
            for i in L.range(k0, k1) { agg.merge(L.aggregate(i, order: order)) }
            cover(lo, (k0 << s) &- 1, level: level - 1, order: order, into: &agg, raw: raw)
            cover((k1 &+ 1) << s, hi, level: level - 1, order: order, into: &agg, raw: raw)
        } else {
            cover(lo, hi, level: level - 1, order: order, into: &agg, raw: raw)
        }
    }
}
