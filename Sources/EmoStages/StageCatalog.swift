import EmoFeatures
import EmoMedia
import EmoNN
import EmoPipeline
import EmoStore

/// The stages this build of emopipe implements; a pipeline file may use any of them.
public enum StageCatalog {
    public static func all() -> [any Stage] {
        [IngestStage(), AudioStage(), FacesStage(), SplitStage(), TrainStage(), EvaluateStage(), ExportStage()]
    }

    /// Library name → version for every C library the stages call, recorded with each run.
    public static var libraryVersions: [String: String] {
        MediaLibraries.versions
            .merging(NumericLibraries.versions) { a, _ in a }
            .merging(FeatureLibraries.versions) { a, _ in a }
            .merging(["sqlite": ProvenanceStore.sqliteVersion]) { a, _ in a }
    }

    /// The GEMM kernels the engine runs, chosen on first use (see EmoNN's `GEMMKernel`).
    public static var gemmKernel: String { GEMMKernel.selection.summary }
}
