import EmoPipeline
import EmoStages
import Testing

@Suite("export.quantize values")
struct ExportQuantizeParameterTests {
    func resolve(_ value: ParamValue) throws -> ExportParameters.Quantize {
        let resolved = try ExportStage().resolveParameters(layers: [ParameterResolver.Layer(origin: .commandLine, values: ["quantize": value])])
        return try #require(resolved.value as? ExportParameters).quantize
    }

    @Test func aMisspeltQuantizeNamesTheValuesAllowed() throws {
        #expect(try resolve(.string("int8")) == .int8 && resolve(.string("none")) == .none)
        for bad in ["int8x", "INT8", ""] {
            do {
                _ = try resolve(.string(bad))
                Issue.record("quantize \(bad) was accepted")
            } catch {
                let message = "\(error)"
                #expect(message.contains("export.quantize = \"\(bad)\"") && message.contains("expected one of 'none', 'int8'"), "\(message)")
            }
        }
    }
}
