/// Largest-Triangle-Three-Buckets downsampling (Steinarsson 2013): keeps the first and last points and, from each
/// of `target - 2` equal-count buckets between them, the point forming the largest triangle with the previously kept
/// point and the mean of the next bucket. Visually faithful, but unlike M4 it may drop extremes; non-finite values
/// (NaN, ±∞) are kept only where chosen as first or last, and are skipped in the triangle areas.
public enum LTTB {
    /// Indices of the points to keep, ascending. `steps` and `values` have equal lengths; `n ≤ target` keeps
    /// everything; `target` 1 or 2 keeps the first (and last) point.
    public static func select(steps: UnsafeBufferPointer<Int64>, values: UnsafeBufferPointer<Double>, target: Int) -> [Int] {
        let n = steps.count
        if n <= target { return Array(0..<n) }
        if target <= 0 { return [] }
        if target == 1 { return [0] }
        if target == 2 { return [0, n - 1] }
        var keep: [Int] = [0]
        keep.reserveCapacity(target)
        let every = Double(n - 2) / Double(target - 2)
        var a = 0
        for b in 0..<(target - 2) {
            // The next bucket's average point.
            let nextStart = Int(Double(b + 1) * every) + 1
            let nextEnd = min(Int(Double(b + 2) * every) + 1, n)
            var avgX = 0.0, avgY = 0.0, m = 0.0
            for k in nextStart..<nextEnd where values[k].isFinite {
                avgX += Double(steps[k])
                avgY += values[k]
                m += 1
            }
            if m > 0 {
                avgX /= m
                avgY /= m
            } else {
                avgX = Double(steps[min(nextStart, n - 1)])
                avgY = values[a].isFinite ? values[a] : 0
            }
            // The point of this bucket with the largest triangle.
            let start = Int(Double(b) * every) + 1
            let end = min(Int(Double(b + 1) * every) + 1, n - 1)
            let ax = Double(steps[a]), ay = values[a].isFinite ? values[a] : avgY
            var best = start, bestArea = -1.0
            for k in start..<max(end, start + 1) {
                let y = values[k].isFinite ? values[k] : ay
                let area = abs((ax - avgX) * (y - ay) - (ax - Double(steps[k])) * (avgY - ay))
                if area > bestArea {
                    bestArea = area
                    best = k
                }
            }
            keep.append(best)
            a = best
        }
        keep.append(n - 1)
        return keep
    }
}
