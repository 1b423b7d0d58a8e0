/// The mergeable aggregate behind ``SeriesSummary``, with ordering keys for exact tie-breaking.
///
/// `order` is the arrival rank of the unit (block or head) a point came from; within one unit points are
/// visited in (step, arrival) order, so (step, order) totally orders candidates from different units.
@usableFromInline
struct Aggregate: Sendable {
    @usableFromInline var count: Int64 = 0
    @usableFromInline var nan: Int64 = 0
    @usableFromInline var posInf: Int64 = 0
    @usableFromInline var negInf: Int64 = 0
    @usableFromInline var sum: Double = 0
    @usableFromInline var firstStep: Int64 = 0
    @usableFromInline var firstOrder: Int64 = 0
    @usableFromInline var firstValue: UInt64 = 0
    @usableFromInline var lastStep: Int64 = 0
    @usableFromInline var lastOrder: Int64 = 0
    @usableFromInline var lastValue: UInt64 = 0
    /// `minValue` is NaN while no non-NaN value was seen.
    @usableFromInline var minStep: Int64 = 0
    @usableFromInline var minOrder: Int64 = 0
    @usableFromInline var minValue: Double = .nan
    @usableFromInline var maxStep: Int64 = 0
    @usableFromInline var maxOrder: Int64 = 0
    @usableFromInline var maxValue: Double = .nan

    @usableFromInline init() {}

    /// Adds one point. Only for points of one unit, in (step, arrival) order, into an aggregate holding nothing
    /// else; combine units with ``merge(_:)``, which applies the (step, order) rules.
    @inlinable @inline(__always)
    mutating func add(step: Int64, bits: UInt64, order: Int64) {
        let v = Double(bitPattern: bits)
        if count == 0 {
            firstStep = step; firstOrder = order; firstValue = bits
        }
        lastStep = step; lastOrder = order; lastValue = bits
        count &+= 1
        if v.isNaN {
            nan &+= 1
            return
        }
        if v.isInfinite {
            if v > 0 { posInf &+= 1 } else { negInf &+= 1 }
        } else {
            sum += v
        }
        if minValue.isNaN || v < minValue {
            minValue = v; minStep = step; minOrder = order
        }
        if maxValue.isNaN || v > maxValue {
            maxValue = v; maxStep = step; maxOrder = order
        }
    }

    /// Whether (s1, o1) comes before (s2, o2).
    @inlinable @inline(__always)
    static func before(_ s1: Int64, _ o1: Int64, _ s2: Int64, _ o2: Int64) -> Bool {
        s1 < s2 || (s1 == s2 && o1 < o2)
    }

    /// Merges another aggregate of a disjoint set of points.
    @inlinable
    mutating func merge(_ o: Aggregate) {
        guard o.count > 0 else { return }
        guard count > 0 else {
            self = o
            return
        }
        count &+= o.count
        nan &+= o.nan
        posInf &+= o.posInf
        negInf &+= o.negInf
        sum += o.sum
        if Self.before(o.firstStep, o.firstOrder, firstStep, firstOrder) {
            firstStep = o.firstStep; firstOrder = o.firstOrder; firstValue = o.firstValue
        }
        if Self.before(lastStep, lastOrder, o.lastStep, o.lastOrder) {
            lastStep = o.lastStep; lastOrder = o.lastOrder; lastValue = o.lastValue
        }
        if !o.minValue.isNaN {
            if minValue.isNaN || o.minValue < minValue
                || (o.minValue == minValue && Self.before(o.minStep, o.minOrder, minStep, minOrder)) {
                minValue = o.minValue; minStep = o.minStep; minOrder = o.minOrder
            }
        }
        if !o.maxValue.isNaN {
            if maxValue.isNaN || o.maxValue > maxValue
                || (o.maxValue == maxValue && Self.before(o.maxStep, o.maxOrder, maxStep, maxOrder)) {
                maxValue = o.maxValue; maxStep = o.maxStep; maxOrder = o.maxOrder
            }
        }
    }

    /// Sets the unit order of every ordered field (for aggregates read from a block's rollups or summary).
    @inlinable
    mutating func setOrder(_ order: Int64) {
        firstOrder = order; lastOrder = order; minOrder = order; maxOrder = order
    }

    /// The public form.
    var summary: SeriesSummary {
        var s = SeriesSummary()
        s.count = Int(count)
        s.nanCount = Int(nan)
        s.posInfCount = Int(posInf)
        s.negInfCount = Int(negInf)
        s.sum = sum
        if count > 0 {
            s.first = StepValue(step: firstStep, value: Double(bitPattern: firstValue))
            s.last = StepValue(step: lastStep, value: Double(bitPattern: lastValue))
        }
        if !minValue.isNaN {
            s.min = StepValue(step: minStep, value: minValue)
            s.max = StepValue(step: maxStep, value: maxValue)
        }
        return s
    }
}
