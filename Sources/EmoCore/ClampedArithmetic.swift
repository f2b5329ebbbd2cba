/// Sums of counts and sizes read from a database or a file a user can edit: held at the bounds of `Int`
/// instead of trapping, so an absurd value gives an absurd figure (or a refusal), never a crash.
extension Int {
    public func clampedAdding(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    public func clampedSubtracting(_ other: Int) -> Int {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }

    public func clampedMultiplied(by other: Int) -> Int {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : product
    }
}

extension Sequence where Element == Int {
    /// The sum, held at `Int.max` or `Int.min` rather than trapping.
    public func clampedSum() -> Int { reduce(0) { $0.clampedAdding($1) } }
}
