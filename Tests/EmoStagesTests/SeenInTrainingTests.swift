@testable import EmoModel
@testable import EmoStages
import Testing

@Suite("evaluate: test clips seen in training")
struct SeenInTrainingTests {
    /// A test clip whose file is a copy of a training clip's file, filed under the test actor, is named:
    /// holding out whole actors did not keep it unseen, and the report does not call it speaker-independent.
    @Test func testClipsWithTheBytesOfATrainingFileAreNamed() throws {
        func source(_ path: String, _ sha: String) -> SplitPlan.Source { .init(path: path, sha256: sha) }
        func clip(_ id: String, actor: Int, speech: SplitPlan.Source?, video: SplitPlan.Source? = nil) -> SplitPlan.Clip {
            .init(clip: id, actor: actor, emotion: 1, label: 0, speech: speech, video: video)
        }
        let plan = SplitPlan(labels: ["neutral"], clips: [
            clip("01-01-01-01-01-01", actor: 1, speech: source("/d/Actor_01/a.wav", "s1")),
            clip("01-01-01-01-02-01", actor: 1, speech: source("/d/Actor_01/b.wav", "s2")),
            clip("01-01-01-01-01-17", actor: 17, speech: source("/d/Actor_17/a.wav", "s1")),       // a copy of a training file
            clip("01-01-01-01-02-17", actor: 17, speech: source("/d/Actor_17/b.wav", "s9")),
            // No wav: the AV clip is its speech (its sound) and its video, as the split plans it.
            clip("01-01-01-01-01-18", actor: 18, speech: source("/d/Actor_18/a.mp4", "s2"), video: source("/d/Actor_18/a.mp4", "s2")),
            clip("01-01-01-01-01-02", actor: 2, speech: source("/d/Actor_02/a.wav", "s5")),
        ], folds: [])
        let folds = [ActorFold(index: 0, test: [17, 18], validation: [2], train: [1]),
                     ActorFold(index: 1, test: [1], validation: [2], train: [17])]
        func scored(_ id: String, actor: Int, fold: Int) -> ClipPrediction {
            ClipPrediction(path: "", clip: id, actor: actor, fold: fold, truth: 0, probabilities: [1])
        }
        let all = [scored("01-01-01-01-01-17", actor: 17, fold: 0), scored("01-01-01-01-02-17", actor: 17, fold: 0),
                   scored("01-01-01-01-01-18", actor: 18, fold: 0), scored("01-01-01-01-01-01", actor: 1, fold: 1)]
        /// Every clip fed the features of each of `modalities` it has a file for.
        func fed(_ modalities: [ModelConfig.Modality]) -> [String: [ModelConfig.Modality]] {
            Dictionary(uniqueKeysWithValues: plan.clips.map { clip in (clip.clip, modalities.filter { clip.source(for: $0) != nil }) })
        }
        let found = EvaluateStage.seenInTraining(scored: all, plan: plan, folds: folds, fed: fed([.audio, .faces]))
        #expect(found == [
            SeenInTraining(clip: "01-01-01-01-01-17", actor: 17, fold: 0, path: "/d/Actor_17/a.wav", trainingClip: "01-01-01-01-01-01", trainingPath: "/d/Actor_01/a.wav"),
            SeenInTraining(clip: "01-01-01-01-01-18", actor: 18, fold: 0, path: "/d/Actor_18/a.mp4", trainingClip: "01-01-01-01-02-01", trainingPath: "/d/Actor_01/b.wav"),
            SeenInTraining(clip: "01-01-01-01-01-01", actor: 1, fold: 1, path: "/d/Actor_01/a.wav", trainingClip: "01-01-01-01-01-17", trainingPath: "/d/Actor_17/a.wav"),
        ], "\(found)")
        #expect(EvaluateStage.seenInTraining(scored: [scored("01-01-01-01-02-17", actor: 17, fold: 0)], plan: plan, folds: folds,
                                             fed: fed([.audio, .faces])).isEmpty,
                "a validation actor's copy (actor 02) is not training")
        // Only the files a model reads count: actor 18's AV clip feeds a speech-only model its sound (it has
        // no wav), and a faces-only model reads no wav, so the wav copies are not seen.
        #expect(EvaluateStage.seenInTraining(scored: all, plan: plan, folds: folds, fed: fed([.audio])) == found)
        #expect(EvaluateStage.seenInTraining(scored: all, plan: plan, folds: folds, fed: fed([.faces])).isEmpty)
        // A file whose features failed fed nothing: two copies of one silent wav, each failing the audio stage,
        // make neither clip seen (the test clip scored from its pictures, the training clip not trained on).
        var silent = fed([.audio, .faces])
        silent["01-01-01-01-01-01"] = []
        silent["01-01-01-01-01-17"] = [.faces]
        #expect(EvaluateStage.seenInTraining(scored: all, plan: plan, folds: folds, fed: silent) == [found[1]], "only actor 18's copy of b.wav")
        let card = HTMLReport.actorsSection(folds, seenInTraining: found)
        #expect(card.contains("Not speaker-independent for 3 test clips") && card.contains("/d/Actor_17/a.wav") && !card.contains("Speaker-independent:"),
                "\(card)")
    }
}
