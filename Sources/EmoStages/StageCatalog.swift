import EmoPipeline

/// The stages this build of emopipe implements; a pipeline file may use any of them.
public enum StageCatalog {
    public static func all() -> [any Stage] {
        [IngestStage(), AudioStage(), FacesStage(), SplitStage(), TrainStage(), EvaluateStage(), ExportStage()]
    }
}
