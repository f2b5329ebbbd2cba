import EmoNN
import EmoTestSupport
import Foundation
import Testing
@testable import EmoModel

/// Mixup's draws follow their distributions, its batch is the blend it claims, its loss is the
/// weighted pair of losses, and a training with it is as repeatable as one without.
@Suite struct MixupTests {
    static func moments(_ draws: [Double]) -> (mean: Double, variance: Double) {
        let mean = draws.reduce(0, +) / Double(draws.count)
        return (mean, draws.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(draws.count - 1))
    }

    @Test(arguments: [0.2, 0.4, 1.0, 3.0])
    func betaDrawsHaveBetaMoments(alpha: Double) {
        let rng = RandomGenerator(seed: 11)
        let draws = (0..<40_000).map { _ in Mixup.beta(alpha, rng: rng) }
        #expect(draws.allSatisfy { $0 >= 0 && $0 <= 1 })
        let (mean, variance) = Self.moments(draws)
        // Beta(α, α): mean 1/2, variance 1 / (4 (2α + 1)); the standard error of the mean is below 0.003.
        #expect(abs(mean - 0.5) < 0.01, "mean \(mean)")
        let expected = 1 / (4 * (2 * alpha + 1))
        #expect(abs(variance - expected) < 0.05 * expected, "variance \(variance) against \(expected)")
    }

    @Test(arguments: [0.3, 1.0, 2.5, 9.0])
    func gammaDrawsHaveGammaMoments(shape: Double) {
        let rng = RandomGenerator(seed: 5)
        let (mean, variance) = Self.moments((0..<40_000).map { _ in Mixup.gamma(shape, rng: rng) })
        // Gamma(k, 1): mean and variance k.
        #expect(abs(mean - shape) < 0.03 * shape + 0.01, "mean \(mean)")
        #expect(abs(variance - shape) < 0.08 * shape, "variance \(variance)")
    }

    @Test func theBatchIsBlendedWithItsPartnersAndTheLossWeighsBothLabels() throws {
        let config = TrainedModelTests.config
        let samples = TrainedModelTests.samples(6, seed: 9)
        let standardizer = Standardizer.fit(samples, config: config)
        let encoder = InputEncoder(config: config, standardizer: standardizer)
        let windows = samples.map { $0.window(start: 0, frames: config.frames, nMels: config.nMels) }
        let input = try encoder.encode(windows)
        let mixup = Mixup(alpha: 0.4, count: windows.count, rng: RandomGenerator(seed: 3))
        #expect(mixup.partner.sorted() == Array(0..<windows.count))
        #expect(mixup.partner != Array(0..<windows.count), "this seed moves some sample")
        let mixed = try mixup.mix(input)
        let l = mixup.lambda, k = config.faceFrames, t = config.frames
        let widths = (audio: config.nMels * t, faces: k * 3 * config.faceSize * config.faceSize)
        let faces = try #require(input.faces), mixedFaces = try #require(mixed.faces)
        var blended = (audio: 0, faces: 0, kept: 0)
        for (i, j) in mixup.partner.enumerated() {
            // A modality is blended where both samples have it; a sample missing it on either side keeps its own.
            let audio = input.modalityMask[i * 2] > 0 && input.modalityMask[j * 2] > 0
            let face = input.modalityMask[i * 2 + 1] > 0 && input.modalityMask[j * 2 + 1] > 0
            blended.audio += audio && i != j ? 1 : 0
            blended.faces += face && i != j ? 1 : 0
            blended.kept += (!audio || !face) ? 1 : 0
            for x in stride(from: 0, to: widths.audio, by: 7) {
                let own = input.logmel.data[i * widths.audio + x], other = input.logmel.data[j * widths.audio + x]
                #expect(mixed.logmel.data[i * widths.audio + x] == (audio ? l * own + (1 - l) * other : own))
            }
            for x in stride(from: 0, to: widths.faces, by: 5) {
                let own = faces.data[i * widths.faces + x], other = faces.data[j * widths.faces + x]
                #expect(mixedFaces.data[i * widths.faces + x] == (face ? l * own + (1 - l) * other : own))
            }
            for f in 0..<t {
                let own = input.logmelMask[i * t + f], other = input.logmelMask[j * t + f]
                #expect(mixed.logmelMask[i * t + f] == (audio ? max(own, other) : own))
            }
            for c in 0..<k {
                let own = input.facesMask[i * k + c], other = input.facesMask[j * k + c]
                #expect(mixed.facesMask[i * k + c] == (face ? max(own, other) : own))
            }
        }
        #expect(mixed.modalityMask == input.modalityMask)
        #expect(blended.audio > 0 && blended.faces > 0 && blended.kept > 0, "the batch covers each case: \(blended)")
        let logits = try Tensor(shape: [windows.count, config.classes], data: (0..<(windows.count * config.classes)).map { Float($0 % 5) * 0.3 - 0.4 })
        let labels = windows.map(\.label), weight = Tensor((0..<config.classes).map { [1, 2, 0.5][$0 % 3] })
        let own = try Losses.crossEntropy(logits, targets: labels, weight: weight, labelSmoothing: 0.1).item
        let partners = try Losses.crossEntropy(logits, targets: mixup.partner.map { labels[$0] }, weight: weight, labelSmoothing: 0.1).item
        let loss = try mixup.loss(logits, targets: labels, weight: weight, labelSmoothing: 0.1).item
        #expect(abs(loss - (l * own + (1 - l) * partners)) < 1e-6)
    }

    @Test func aTrainingWithMixupIsRepeatableAndDiffersFromOneWithout() throws {
        func fit(_ mixup: Double?, _ name: String) throws -> TrainingState {
            let trainer = WeightAverageTests.trainer(averaging: nil, epochsToTrain: 3)
            var config = trainer.config
            config.augmentation.mixup = mixup
            let train = TrainedModelTests.samples(12, seed: 1)
            let again = Trainer(model: EmotionModel(TrainedModelTests.config, seed: 3), config: config, standardizer: trainer.standardizer,
                                classWeights: Trainer.classWeights(labels: train.map(\.label), classes: TrainedModelTests.config.classes), seed: 4)
            return try WeightAverageTests.fit(again, folder: URL(fileURLWithPath: try TestSupport.temporaryFolder(name)).appendingPathComponent("fold-0"))
        }
        let first = try fit(0.4, "mixup-a"), second = try fit(0.4, "mixup-b"), plain = try fit(nil, "mixup-off")
        #expect(first.epochs.map(\.trainLoss) == second.epochs.map(\.trainLoss))
        #expect(first.epochs.map(\.valLoss) == second.epochs.map(\.valLoss))
        #expect(first.epochs.map(\.trainLoss) != plain.epochs.map(\.trainLoss))
    }
}

/// The encoder reads each sample's arrays at the model's shape: smaller ones are refused by shape, not read past.
@Suite struct InputEncoderShapeTests {
    @Test func samplesSmallerThanTheModelsInputAreRefusedByShape() throws {
        let config = TrainedModelTests.config
        let samples = TrainedModelTests.samples(3, seed: 4)
        let encoder = InputEncoder(config: config, standardizer: Standardizer.fit(samples, config: config))
        let window = samples[0].window(start: 0, frames: config.frames, nMels: config.nMels)
        #expect(throws: Never.self) { try encoder.encode([window]) }
        var smallCrops = window, shortLogMel = window, tooManyFrames = window, shortMask = window
        smallCrops.faces = [UInt8](repeating: 7, count: config.faceFrames * 8 * 8 * 3)   // 8-pixel crops for a 16-pixel model
        shortLogMel.logmel = Array(window.logmel?.prefix(config.frames) ?? [])           // one band
        tooManyFrames.realFrames = config.frames + 1
        shortMask.faceMask = [1]
        for (name, sample) in [("small crops", smallCrops), ("short log-mel", shortLogMel), ("frames", tooManyFrames), ("mask", shortMask)] {
            let refused = try #require(throws: ShapeError.self, "\(name)") { try encoder.encode([window, sample]) }
            #expect(refused.op == "encode \(sample.id)", "\(name): \(refused)")
        }
    }
}
