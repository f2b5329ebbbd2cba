import EmoCore
import EmoPipeline
import EmoStages
import EmoStore
import EmoTestSupport
import Foundation
import Testing

@Suite("sweep validation")
struct SweepValidationCancelTests {
    /// Validating every trial of a large sweep takes minutes; a Ctrl-C (a cancelled Cancellation)
    /// during it stops the sweep as interrupted instead of validating on.
    @Test func aCancelledSweepStopsWhileValidatingItsTrials() throws {
        let folder = try TestSupport.temporaryFolder("sweep-validate-cancel")
        let path = try TestSupport.writeManifest(at: folder + "/s.yaml", data: folder + "/data", """
            name: s
            sweep: {metric: weighted_f1, grid: {train.dropout: [0.1, 0.2, 0.3]}}
            """)
        let manifest = try Manifest.load(path: path)
        let workspace = Workspace(root: folder + "/work")
        _ = try SweepRunner(manifest: manifest, workspace: workspace, stages: StageCatalog.all())
        let cancellation = Cancellation()
        cancellation.cancel()
        #expect(throws: EmoError.interrupted) {
            _ = try SweepRunner(manifest: manifest, workspace: workspace, stages: StageCatalog.all(), cancellation: cancellation)
        }
    }
}
