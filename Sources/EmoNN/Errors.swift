/// Raised when operands' shapes do not fit together; names both shapes so the
/// caller can see which side is wrong without a debugger.
/// The address-space limit leaves OpenBLAS no room for the threads asked for (`Engine.addressSpaceShortfall`).
public struct AddressSpaceTooSmall: Error, CustomStringConvertible, Sendable {
    public let description: String
}

public struct ShapeError: Error, CustomStringConvertible, Equatable, Sendable {
    public let op: String
    public let lhs: [Int]
    public let rhs: [Int]
    public let reason: String

    public init(_ op: String, _ lhs: [Int], _ rhs: [Int], _ reason: String) {
        self.op = op
        self.lhs = lhs
        self.rhs = rhs
        self.reason = reason
    }

    public var description: String {
        "\(op): shapes \(lhs) and \(rhs) do not fit: \(reason)"
    }
}

/// Errors other than shape mismatches: bad arguments, unreadable files.
public enum NNError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidArgument(String)
    case format(String)
    case missing(String)
    /// A file that could not be written: the message names it and says why.
    case write(String)
    /// A training whose weights all went to NaN or infinity: the message says what to change.
    case diverged(String)

    public var description: String {
        switch self {
        case .write(let m), .diverged(let m): return m
        case .invalidArgument(let m): return "invalid argument: \(m)"
        case .format(let m): return "format error: \(m)"
        case .missing(let m): return "missing: \(m)"
        }
    }
}
