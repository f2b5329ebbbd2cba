import EmoCore
@testable import EmoPipeline
import Foundation
import Testing

/// What the tool prints as JSON: snake_case keys at every depth, unknown values as null rather than left out.
@Suite("JSON shape")
struct JSONShapeTests {
    @Test func dottedNamesNestAsObjects() throws {
        let flat = ParamValue.object([
            "weighted_f1": .double(0.6), "cv.weighted_f1.mean": .double(0.61), "cv.weighted_f1.std": .double(0.03),
            "int8.accuracy": .double(0.5), "export.quantize": .string("int8"),
            // A value is data: a map inside it keeps its keys, dotted or not.
            "class_weights": .object(["a.b": .int(1)]),
        ])
        #expect(flat.nestingDottedKeys == .object([
            "weighted_f1": .double(0.6),
            "cv": .object(["weighted_f1": .object(["mean": .double(0.61), "std": .double(0.03)])]),
            "int8": .object(["accuracy": .double(0.5)]), "export": .object(["quantize": .string("int8")]),
            "class_weights": .object(["a.b": .int(1)]),
        ]))
        // A name whose place is taken (a plain key, or a shorter dotted name's value) stays as it is: nothing is
        // lost or overwritten; nor is a name with an empty part split.
        let clash = ParamValue.object(["seed": .int(1), "seed.extra": .int(2), ".hidden": .int(3), "end.": .int(4),
                                       "a.b": .int(5), "a.b.c": .int(6), "x": .object(["y": .int(7)]), "x.y": .int(8)])
        #expect(clash.nestingDottedKeys == .object(["seed": .int(1), "seed.extra": .int(2), ".hidden": .int(3), "end.": .int(4),
                                                    "a": .object(["b": .int(5)]), "a.b.c": .int(6),
                                                    "x": .object(["y": .int(7)]), "x.y": .int(8)]))
        #expect(ParamValue.array([.object(["a.b": .int(1)])]).nestingDottedKeys == .array([.object(["a.b": .int(1)])]))
    }

    @Test func anUnknownEnvironmentFieldIsNullNotMissing() throws {
        let environment = RunEnvironment(emopipeVersion: "0", gitCommit: nil, gitDirty: nil, executableSha256: nil, toolchain: "t",
                                         operatingSystem: "o", host: "h", libraries: ["gemm_kernel": "k"], seed: 1, threads: 2)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(environment.json.utf8)) as? [String: Any])
        for key in ["git_commit", "git_dirty", "executable_sha256"] {
            #expect(object.keys.contains(key) && object[key] is NSNull, "\(key): \(object[key] as Any)")
        }
        #expect(RunEnvironment.decode(environment.json) == environment)
    }
}
