import Foundation
import Yams

/// A pipeline file (`pipelines/*.yaml`): the stages, their upstream stages and default parameters.
///
///     name: ravdess
///     stages:
///       ingest:
///         description: find, validate, hash and probe the RAVDESS files
///       audio:
///         needs: [ingest]
///         params: {preset: speech}
public struct PipelineDefinition: Equatable, Sendable {
    public struct StageDeclaration: Equatable, Sendable {
        public var name: String
        public var needs: [String]
        public var params: [String: ParamValue]
        public var description: String
    }

    public var name: String
    /// In dependency order (a stage after all it needs; declaration order breaks ties).
    public var stages: [StageDeclaration]

    public func stage(_ name: String) -> StageDeclaration? { stages.first { $0.name == name } }
    public var stageNames: [String] { stages.map(\.name) }

    /// `manifest`: the manifest whose `pipeline` names the file, named when the file cannot be read.
    public static func load(path: String, manifest: String? = nil) throws -> PipelineDefinition {
        let what = manifest.map { "pipeline file (named by \($0.shownPath))" } ?? "pipeline file"
        return try parse(yaml: try SafeYAML.read(path: path, what: what), origin: path)
    }

    static let fileKeys: Set<String> = ["name", "description", "stages"]
    static let stageKeys: Set<String> = ["description", "needs", "params"]

    /// Read strictly: an unknown field (a typo such as `neds:`), a `needs` entry or a `description`
    /// that is not text, or a stage body that is not a mapping is refused, naming the file and line.
    public static func parse(yaml text: String, origin: String) throws -> PipelineDefinition {
        func fail(_ why: String) -> PipelineError { .invalidFile("\(origin): \(why)") }
        func line(_ node: Node) -> String { node.mark.map { "line \($0.line): " } ?? "" }
        // Text as YAML types it, as a manifest's fields are read: `name: 5` is a number, not a name. An
        // optional field may be null (absent); a `needs` entry may not.
        func textField(_ node: Node?, _ what: String, optional: Bool = true) throws -> String? {
            guard let node, !(optional && node.null != nil) else { return nil }
            guard case .scalar = node, case .string(let value)? = try? ParamValue(yaml: node, origin: origin) else {
                throw fail("\(line(node))\(what) must be text")
            }
            return value
        }
        func requireKnown(_ map: Node.Mapping, _ known: Set<String>, _ what: String) throws {
            for key in map.keys {
                guard let name = key.string, known.contains(name) else {
                    throw fail("\(line(key))unknown field '\((key.scalar?.string ?? "?").shownKey)' \(what) (known: \(known.sorted().joined(separator: ", ")))")
                }
            }
        }
        let root = try SafeYAML.compose(text, origin: origin)
        guard let map = root?.mapping else { throw fail("expected a mapping with 'name' and 'stages'") }
        try requireKnown(map, fileKeys, "in a pipeline file")
        let name = try textField(map["name"], "'name'") ?? (origin as NSString).lastPathComponent
        _ = try textField(map["description"], "'description'")
        guard let stagesNode = map["stages"] else { throw fail("'stages' is missing") }
        guard stagesNode.null == nil else { throw fail("\(line(stagesNode))'stages' has no value; it must map each stage's name to its description, needs and params") }
        guard let stageMap = stagesNode.mapping else {
            let kind = stagesNode.sequence != nil ? "a list" : "a single value"
            throw fail("\(line(stagesNode))'stages' is \(kind); it must map each stage's name to its description, needs and params")
        }
        guard !stageMap.isEmpty else { throw fail("'stages' is empty") }
        var declared: [StageDeclaration] = []
        for (key, body) in stageMap {
            guard let stageName = key.string else { throw fail("a stage name is not a string") }
            var fields: Node.Mapping?
            switch body {
            case .mapping(let mapping): fields = mapping
            case .scalar where body.null != nil: fields = nil
            default: throw fail("\(line(body))stage '\(stageName.echoed)' must be a mapping (description, needs, params)")
            }
            if let fields { try requireKnown(fields, stageKeys, "in stage '\(stageName.echoed)'") }
            let needs = try fields?["needs"].map { node -> [String] in
                guard let seq = node.sequence else { throw fail("stage '\(stageName)': 'needs' must be a list") }
                let listed = try seq.map { try textField($0, "stage '\(stageName.echoed)': each of 'needs'", optional: false) ?? "" }
                if let twice = listed.first(where: { need in listed.filter { $0 == need }.count > 1 }) {
                    throw fail("\(line(node))stage '\(stageName.echoed)': 'needs' lists '\(twice.echoed)' twice")
                }
                return listed
            } ?? []
            var params: [String: ParamValue] = [:]
            if let node = fields?["params"], node.null == nil {
                guard case .object(let object) = try ParamValue(yaml: node, origin: origin) else {
                    throw fail("stage '\(stageName)': 'params' must be a mapping")
                }
                params = object
            }
            declared.append(StageDeclaration(name: stageName, needs: needs, params: params,
                                             description: try textField(fields?["description"], "stage '\(stageName.echoed)': 'description'") ?? ""))
        }
        return PipelineDefinition(name: name, stages: try orderByDependencies(declared, origin: origin))
    }

    /// Topological order, stable with respect to the declaration order.
    static func orderByDependencies(_ stages: [StageDeclaration], origin: String) throws -> [StageDeclaration] {
        let names = Set(stages.map(\.name))
        for stage in stages {
            for need in stage.needs where !names.contains(need) {
                throw PipelineError.invalidFile("\(origin): stage '\(stage.name)' needs '\(need)', which is not declared")
            }
        }
        var ordered: [StageDeclaration] = []
        var placed = Set<String>()
        var remaining = stages
        while !remaining.isEmpty {
            guard let next = remaining.firstIndex(where: { $0.needs.allSatisfy(placed.contains) }) else {
                throw PipelineError.invalidFile("\(origin): \(PipelineError.cycle(cycle(in: remaining)))")
            }
            placed.insert(remaining[next].name)
            ordered.append(remaining.remove(at: next))
        }
        return ordered
    }

    /// One cycle among stages none of which can be placed: follow unplaced needs from the first
    /// until a stage repeats, and name only the stages on the loop (`a → a` for a stage needing itself).
    static func cycle(in remaining: [StageDeclaration]) -> [String] {
        let byName = Dictionary(remaining.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var path: [String] = []
        var current = remaining[0].name
        while !path.contains(current) {
            path.append(current)
            guard let next = byName[current]?.needs.first(where: { byName[$0] != nil }) else { return path }
            current = next
        }
        return Array(path[path.firstIndex(of: current)!...]) + [current]
    }

    /// The stages no other stage needs: where a whole run ends.
    public var finalStages: [String] {
        let needed = stages.reduce(into: Set<String>()) { $0.formUnion($1.needs) }
        return stageNames.filter { !needed.contains($0) }
    }

    /// `stage` and every stage it depends on, transitively.
    public func closure(of stage: String) -> Set<String> { closure(of: [stage]) }

    /// `stages` and every stage they depend on, transitively.
    public func closure(of stages: [String]) -> Set<String> {
        var result = Set(stages)
        var frontier = stages
        while let current = frontier.popLast() {
            for need in self.stage(current)?.needs ?? [] where result.insert(need).inserted { frontier.append(need) }
        }
        return result
    }
}
