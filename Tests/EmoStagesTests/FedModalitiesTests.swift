import EmoModel
@testable import EmoStages
import Testing

/// The model gets a branch only for a modality some training clip has data for (TrainStage.fedByTraining).
@Suite("modalities the data feeds")
struct FedModalitiesTests {
    static func clip(speech: Bool, video: Bool) -> ClipFeatures {
        ClipFeatures(id: "c", logmel: speech ? [0, 0] : nil, melFrames: speech ? 1 : 0,
                     faces: video ? [0] : nil, faceMask: video ? [1] : [0], label: 0)
    }

    @Test func aBranchNoClipCanFeedIsLeftOut() {
        let both: [ModelConfig.Modality] = [.audio, .faces]
        let speechOnly = [Self.clip(speech: true, video: false), Self.clip(speech: true, video: false)]
        let videoOnly = [Self.clip(speech: false, video: true)]
        let mixed = [Self.clip(speech: true, video: false), Self.clip(speech: false, video: true)]
        #expect(FeatureSet.fed(both, samples: speechOnly) == [.audio])
        #expect(FeatureSet.fed(both, samples: videoOnly) == [.faces])
        #expect(FeatureSet.fed(both, samples: mixed) == both, "one clip with video keeps the face branch")
        #expect(FeatureSet.fed([.faces, .audio], samples: mixed) == [.faces, .audio], "the order asked for is kept")
        #expect(FeatureSet.fed([.audio], samples: speechOnly) == [.audio])
    }

    @Test func withNothingToFeedTheRequestStandsForTheCallerToRefuse() {
        #expect(FeatureSet.fed([.audio, .faces], samples: []) == [.audio, .faces])
        #expect(FeatureSet.fed([.faces], samples: [Self.clip(speech: true, video: false)]) == [.faces])
    }
}
