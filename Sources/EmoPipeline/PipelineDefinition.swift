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

    public static func load(path: String) throws -> PipelineDefinition {
        try parse(yaml: try SafeYAML.read(path: path, what: "pipeline file"), origin: path)
    }

    public static func parse(yaml text: String, origin: String) throws -> PipelineDefinition {
        func fail(_ why: String) -> PipelineError { .invalidFile("\(origin): \(why)") }
        let root = try SafeYAML.compose(text, origin: origin)
        guard let map = root?.mapping else { throw fail("expected a mapping with 'name' and 'stages'") }
        let name = map["name"]?.string ?? (origin as NSString).lastPathComponent
        guard let stageMap = map["stages"]?.mapping, !stageMap.isEmpty else { throw fail("'stages' is missing or empty") }
        var declared: [StageDeclaration] = []
        for (key, body) in stageMap {
            guard let stageName = key.string else { throw fail("a stage name is not a string") }
            let fields = body.mapping
            let needs = try fields?["needs"].map { node -> [String] in
                guard let seq = node.sequence else { throw fail("stage '\(stageName)': 'needs' must be a list") }
                return seq.compactMap(\.string)
            } ?? []
            var params: [String: ParamValue] = [:]
            if let node = fields?["params"] {
                guard case .object(let object) = try ParamValue(yaml: node, origin: origin) else {
                    throw fail("stage '\(stageName)': 'params' must be a mapping")
                }
                params = object
            }
            declared.append(StageDeclaration(name: stageName, needs: needs, params: params,
                                             description: fields?["description"]?.string ?? ""))
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
                throw PipelineError.invalidFile("\(origin): \(PipelineError.cycle(remaining.map(\.name)))")
            }
            placed.insert(remaining[next].name)
            ordered.append(remaining.remove(at: next))
        }
        return ordered
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
