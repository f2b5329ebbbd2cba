import EmoCore

/// A stage's identity for one execution.
///
/// - `parameters`: SHA-256 of name, code version, canonical parameters and the content of the files
///   parameters name (`files`: key → SHA-256, the faces stage's landmark model). Per-source stages key
///   their units of work by (source SHA-256, `parameters`), so new data costs only new units.
/// - `full`: SHA-256 of `parameters` and the upstream stages' output digests: what `status`
///   compares to decide whether the stage is up to date.
public struct Fingerprint: Equatable, Sendable {
    public var stage: String
    public var codeVersion: String
    public var params: [String: ParamValue]
    public var inputs: [String: String]
    /// The SHA-256 of each file a parameter names whose content the output depends on, by key: a file
    /// edited in place recomputes the stage, the same bytes under another path do not change this.
    public var files: [String: String]

    public init(stage: String, codeVersion: String, params: [String: ParamValue], inputs: [String: String],
                files: [String: String] = [:]) {
        self.stage = stage; self.codeVersion = codeVersion; self.params = params; self.inputs = inputs; self.files = files
    }

    public var paramsJSON: String { ParamValue.object(params).canonicalJSON }
    public var inputsJSON: String { ParamValue.object(inputs.mapValues(ParamValue.string)).canonicalJSON }

    public var parameters: String {
        var identity: [String: ParamValue] = ["stage": .string(stage), "code_version": .string(codeVersion), "params": .object(params)]
        // Only where a parameter names such a file: every other stage keeps the fingerprints it had.
        if !files.isEmpty { identity["files"] = .object(files.mapValues(ParamValue.string)) }
        return SHA256Hex.of(ParamValue.object(identity).canonicalJSON)
    }

    public var full: String {
        SHA256Hex.of(ParamValue.object([
            "parameters": .string(parameters), "inputs": .object(inputs.mapValues(ParamValue.string)),
        ]).canonicalJSON)
    }

    /// Short form for folder names and messages.
    public var short: String { String(parameters.prefix(16)) }
}
