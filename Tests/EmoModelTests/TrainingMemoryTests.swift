import EmoModel
import Testing

@Suite("training memory estimate")
struct TrainingMemoryTests {
    static let speech = ModelConfig(modalities: [.audio], classes: 8, nMels: 64, frames: 300, recurrent: true)

    @Test func growsWithTheBatchAndTheInput() {
        let sizes = [1, 2, 8, 16, 64].map { TrainingMemory.bytes(Self.speech, batchSize: $0, threads: 2) }
        #expect(zip(sizes, sizes.dropFirst()).allSatisfy { $0 < $1 }, "\(sizes)")
        var longer = Self.speech
        longer.frames = 600
        #expect(TrainingMemory.bytes(longer, batchSize: 16, threads: 2) > TrainingMemory.bytes(Self.speech, batchSize: 16, threads: 2))
        var faces = Self.speech
        faces.modalities = [.audio, .faces]
        #expect(TrainingMemory.bytes(faces, batchSize: 16, threads: 2) > TrainingMemory.bytes(Self.speech, batchSize: 16, threads: 2))
    }

    /// A model within the parameters' ranges but of billions of weights is not built to count them (that
    /// would allocate them all, gigabytes, for an estimate): its largest matrices stand for the count. A
    /// model of ordinary size is counted exactly, by building it.
    @Test func aHugeModelIsCountedWithoutBuildingIt() throws {
        var huge = Self.speech
        huge.nMels = 512; huge.audioChannels = [1024]; huge.embedding = 4096
        let dominant = try #require(huge.dominantWeightCount)
        #expect(dominant > 1_000_000_000)
        #expect(TrainingMemory.parameterCount(huge) == dominant)
        #expect(TrainingMemory.bytes(huge, batchSize: 2, threads: 2) > 7 * 4 * dominant)
        let built = EmotionModel(Self.speech, seed: 0).parameters().reduce(0) { $0 + $1.count }
        #expect(TrainingMemory.parameterCount(Self.speech) == built)
        #expect(try #require(Self.speech.dominantWeightCount) < built)
    }

    /// The per-sample part is the activations' floats and two gradients of the widest conv output,
    /// four bytes each, times the calibration; other gradients are transient (the backward pass frees
    /// what it passes).
    @Test func oneMoreSampleCostsItsActivationsAndTheWidestGradients() {
        let one = TrainingMemory.bytes(Self.speech, batchSize: 1, threads: 1)
        let two = TrainingMemory.bytes(Self.speech, batchSize: 2, threads: 1)
        // The first conv block is the widest: it keeps 3 full-size outputs of 16 channels over 64 x 300,
        // and two gradients of that size pile up; the later blocks, each at a quarter of the size before,
        // add about a third of its activations.
        let firstBlock = Double(5 * 16 * 64 * 300 * 4) * TrainingMemory.calibration
        #expect(Double(two - one) > firstBlock, "\(two - one) bytes per sample")
        #expect(Double(two - one) < 2 * firstBlock, "\(two - one) bytes per sample")
        // One wide block before the GRU: its output is most of what a sample holds, so the two gradients
        // weigh more than a third of the sample's cost.
        var wide = Self.speech
        wide.audioChannels = [256]
        let perSample = TrainingMemory.bytes(wide, batchSize: 2, threads: 1) - TrainingMemory.bytes(wide, batchSize: 1, threads: 1)
        let gradients = Double(2 * 256 * 64 * 300 * 4) * TrainingMemory.calibration
        #expect(Double(perSample) > 2.5 * gradients && Double(perSample) < 4 * gradients, "\(perSample) bytes per sample")
    }

    /// A weight average holds a copy of the weights, and a checkpoint snapshots it: two more copies.
    @Test func aWeightAverageCostsTwoCopiesOfTheParameters() {
        let plain = TrainingMemory.bytes(Self.speech, batchSize: 16, threads: 2)
        let averaging = TrainingMemory.bytes(Self.speech, batchSize: 16, threads: 2, averagingWeights: true)
        let twoCopies = Double(2 * 4 * TrainingMemory.parameterCount(Self.speech)) * TrainingMemory.calibration
        #expect(abs(Double(averaging - plain) - twoCopies) < 2, "\(averaging - plain) bytes more")
        let tight = TrainingMemory.largestBatch(Self.speech, threads: 2, available: plain, upTo: 64)
        let withAverage = TrainingMemory.largestBatch(Self.speech, threads: 2, available: plain, upTo: 64, averagingWeights: true)
        #expect(tight == 16 && (withAverage ?? 0) < 16, "\(String(describing: tight)) \(String(describing: withAverage))")
    }

    @Test func largestBatchIsTheBoundaryOfWhatFits() throws {
        let available = 200 << 20
        let largest = try #require(TrainingMemory.largestBatch(Self.speech, threads: 2, available: available, upTo: 4096))
        #expect(TrainingMemory.bytes(Self.speech, batchSize: largest, threads: 2) <= available)
        #expect(TrainingMemory.bytes(Self.speech, batchSize: largest + 1, threads: 2) > available)
        #expect(TrainingMemory.largestBatch(Self.speech, threads: 2, available: available, upTo: 3) == min(3, largest))
        #expect(TrainingMemory.largestBatch(Self.speech, threads: 2, available: 1 << 20, upTo: 16) == nil,
                "1 MB holds not even the parameters' seven copies")
        #expect(TrainingMemory.largestBatch(Self.speech, threads: 2, available: available, upTo: 0) == nil)
    }
}
