import EmoCore

/// A stage's identity for one execution.
///
/// - `parameters`: SHA-256 of name, code version and canonical parameters. Per-source stages key
///   their units of work by (source SHA-256, `parameters`), so new data costs only new units.
/// - `full`: SHA-256 of `parameters` and the upstream stages' output digests: what `status`
///   compares to decide whether the stage is up to date.
public struct Fingerprint: Equatable, Sendable {
    public var stage: String
    public var codeVersion: String
    public var params: [String: ParamValue]
    public var inputs: [String: String]

    public init(stage: String, codeVersion: String, params: [String: ParamValue], inputs: [String: String]) {
        self.stage = stage; self.codeVersion = codeVersion; self.params = params; self.inputs = inputs
    }

    public var paramsJSON: String { ParamValue.object(params).canonicalJSON }
    public var inputsJSON: String { ParamValue.object(inputs.mapValues(ParamValue.string)).canonicalJSON }

    public var parameters: String {
        SHA256Hex.of(ParamValue.object([
            "stage": .string(stage), "code_version": .string(codeVersion), "params": .object(params),
        ]).canonicalJSON)
    }

    public var full: String {
        SHA256Hex.of(ParamValue.object([
            "parameters": .string(parameters), "inputs": .object(inputs.mapValues(ParamValue.string)),
        ]).canonicalJSON)
    }

    /// Short form for folder names and messages.
    public var short: String { String(parameters.prefix(16)) }
}
