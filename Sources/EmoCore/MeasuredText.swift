import Foundation

extension Double {
    /// The value with `places` decimals (`%.1f`), as measured figures print; past 10^15, where a damaged
    /// or hand-edited record's 1e308 would print 309 digits, in `%g` (1e+308).
    public func fixedText(places: Int) -> String {
        guard isFinite, abs(self) < 1e15 else { return String(format: "%g", self) }
        return String(format: "%.\(places)f", self)
    }
}
