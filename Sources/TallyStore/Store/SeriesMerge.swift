/// One key's part in one input segment of a compaction, decoded a block at a time.
struct MergeInput {
    /// The segment's age among the inputs: among equal steps the older segment's points come first.
    let order: Int
    let segment: SegmentReader
    private let blocks: [BlockMeta]
    private var nextBlock = 0
    /// The decoded block (or pack slice) being consumed, and the position in it.
    private(set) var steps: [Int64] = []
    private(set) var timestamps: [Int64] = []
    private(set) var values: [UInt64] = []
    private(set) var position = 0
    /// Points of this part in the segment.
    let count: Int

    /// The part of series `si` of `segment`; a packed series is decoded whole from `pack` (packs are small).
    init(order: Int, segment: SegmentReader, series si: Int, pack: (Int) throws -> DecodedPack) throws {
        self.order = order
        self.segment = segment
        if let slot = segment.series.slot(si) {
            let cols = try pack(slot.pack).columns(slot.ordinal, key: "")
            blocks = []
            (steps, timestamps, values) = (cols.steps, cols.timestamps, cols.values)
            count = cols.count
        } else {
            blocks = segment.series.blocks(si)
            count = blocks.reduce(0) { $0 + $1.count }
        }
    }

    /// The next point's step (the input must not be done and must be ready, see ``ready(planes:)``).
    var step: Int64 { steps[position] }

    /// Decodes the next block when the current one is used up; `false` when nothing is left.
    mutating func ready(planes: PlaneCodec) throws -> Bool {
        while position == steps.count {
            guard nextBlock < blocks.count else { return false }
            let meta = blocks[nextBlock]
            let last = steps.last
            nextBlock += 1
            steps = try segment.readInts(meta.steps, count: meta.count, planes: planes, what: "step column")
            timestamps = try segment.readInts(meta.timestamps, count: meta.count, planes: planes, what: "timestamp column")
            values = try segment.readValues(meta.values, count: meta.count, planes: planes)
            position = 0
            if let last, let first = steps.first, first < last {
                throw StorageError(.corrupt, "series blocks out of step order (\(first) after \(last))", path: segment.path,
                                   offset: meta.steps.offset)
            }
        }
        return true
    }

    /// Takes points while their step stays below `bound` (or equals it when this input is older than the one bounding
    /// it), at most `limit`; returns how many.
    mutating func take(below bound: (step: Int64, order: Int)?, limit: Int, into out: inout SealColumns) -> Int {
        let stop = min(steps.count, position + limit)
        var end = position + 1  // the caller chose this input: its first point is below the bound
        if let bound {
            let inclusive = order < bound.order
            while end < stop && (steps[end] < bound.step || (inclusive && steps[end] == bound.step)) { end += 1 }
        } else {
            end = stop
        }
        if end - position == 1 {
            out.steps.append(steps[position])
            out.timestamps.append(timestamps[position])
            out.values.append(values[position])
        } else {
            out.steps += steps[position..<end]
            out.timestamps += timestamps[position..<end]
            out.values += values[position..<end]
        }
        let n = end - position
        position = end
        return n
    }
}

/// A k-way merge of one key's parts, each sorted by step: equal steps keep segment age, then arrival order, as a
/// stable sort of the parts concatenated oldest first would. Memory is one decoded block per input plus the output.
struct SeriesMerge {
    var inputs: [MergeInput]
    let planes: PlaneCodec

    /// Points in all parts.
    var count: Int { inputs.reduce(0) { $0 + $1.count } }

    /// The next `n` merged points (fewer only when the inputs run out).
    mutating func next(_ n: Int, key: String) throws -> SealColumns {
        var out = SealColumns(key: key, steps: [], timestamps: [], values: [])
        out.steps.reserveCapacity(n)
        out.timestamps.reserveCapacity(n)
        out.values.reserveCapacity(n)
        var need = n
        while need > 0 {
            var best = -1
            var bestStep = Int64.max
            var bound: (step: Int64, order: Int)?
            // Inputs are in age order, so among equal steps the first one seen is the oldest.
            for i in inputs.indices {
                guard try inputs[i].ready(planes: planes) else { continue }
                let step = inputs[i].step
                if best < 0 || step < bestStep {
                    if best >= 0 { bound = (bestStep, inputs[best].order) }
                    best = i
                    bestStep = step
                } else if bound == nil || step < bound!.step {
                    bound = (step, inputs[i].order)
                }
            }
            guard best >= 0 else { break }
            need -= inputs[best].take(below: bound, limit: need, into: &out)
        }
        return out
    }
}
