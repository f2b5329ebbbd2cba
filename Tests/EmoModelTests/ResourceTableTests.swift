import EmoModel
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite struct ResourceTableTests {
    static let rows = [
        StageResources(stage: "audio", runId: "20261201-050000-abc123", seconds: 68.84, cpuSeconds: 75.06, peakRSSMB: 110.9),
        StageResources(stage: "train", runId: "run<&>", seconds: nil, cpuSeconds: nil, peakRSSMB: nil),
    ]

    @Test func theResourcesCardShowsEachExecutionAndStaysWellFormed() throws {
        var input = try SampleReport.input()
        input.resources = Self.rows
        input.memoryBudgetMB = 256
        let html = HTMLReport.render(input)
        #expect(html.contains("<section class=\"card\" id=\"resources\">"))
        #expect(html.contains("<td>68.8</td><td>75.1</td><td>111</td>"), "seconds, CPU seconds, peak MB")
        #expect(html.contains("run&lt;&amp;&gt;") && html.contains("<td>—</td><td>—</td><td>—</td>"), "unmeasured rows say so")
        #expect(html.contains("memory budget 256 MB"))
        #expect(Markup.balanceProblems(html) == [])
        #if canImport(FoundationXML)
        #expect(Markup.parseXML(html).error == nil)
        #endif
        // Resources sit before provenance, and a report without them has no card.
        let card = try #require(html.range(of: "id=\"resources\""))
        let provenance = try #require(html.range(of: "id=\"provenance\""))
        #expect(card.lowerBound < provenance.lowerBound)
        #expect(!HTMLReport.render(try SampleReport.input()).contains("id=\"resources\""))
    }
}
