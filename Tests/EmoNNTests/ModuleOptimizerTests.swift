import Foundation
import Testing
@testable import EmoNN

@Suite struct ModuleTests {
    @Test func namesFollowPyTorchStateDict() {
        let rng = RandomGenerator(seed: 1)
        let net = Sequential([Conv2d(1, 4, kernel: (3, 3), bias: false, rng: rng), BatchNorm2d(4), ReLU(),
                              GlobalAvgPool2d(), Linear(4, 2, rng: rng)])
        #expect(net.namedParameters().map(\.0) == ["0.weight", "1.weight", "1.bias", "4.weight", "4.bias"])
        #expect(net.namedBuffers().map(\.0) == ["1.running_mean", "1.running_var", "1.num_batches_tracked"])
        net.eval()
        #expect(!(net.layers[1].training))
    }

    @Test func loadChecksNamesAndShapes() throws {
        let rng = RandomGenerator(seed: 2)
        let a = Linear(3, 2, rng: rng), b = Linear(3, 2, rng: rng)
        try b.load(a.stateDict())
        #expect(a.weight.data == b.weight.data)
        #expect(throws: ShapeError.self) { try Linear(4, 2, rng: rng).load(a.stateDict()) }
        #expect(throws: NNError.self) { try b.load([:]) }
    }

    @Test func batchNormLayerSwitchesModes() throws {
        let bn = BatchNorm1d(3)
        let x = randomTensor([8, 3], seed: 3) * 2 + 1
        _ = try bn(x)
        #expect(bn.runningMean.data != [0, 0, 0])
        bn.eval()
        let before = bn.runningMean.data
        let y = try bn(x)
        #expect(bn.runningMean.data == before)
        let expected = (x.data[0] - before[0]) / (bn.runningVar.data[0] + 1e-5).squareRoot()
        #expect(abs(y.data[0] - expected) < 1e-5)
        #expect(throws: ShapeError.self) { try bn(Tensor.zeros([2, 3, 4, 4])) }
    }
}

@Suite struct OptimizerTests {
    @Test func sgdMomentumMatchesHandComputation() throws {
        let p = try Tensor(shape: [1], data: [1], requiresGrad: true)
        let opt = SGD([p], learningRate: 0.1, momentum: 0.9)
        for _ in 0..<2 {
            opt.zeroGrad()
            try p.sum().backward()
            opt.step()
        }
        // b₁ = 1, p = 0.9; b₂ = 0.9 + 1 = 1.9, p = 0.9 − 0.19.
        #expect(abs(p.data[0] - 0.71) < 1e-6)
    }

    @Test func adamWFirstStepIsSignedLearningRate() throws {
        let p = try Tensor(shape: [2], data: [1, -2], requiresGrad: true)
        let opt = AdamW([p], learningRate: 0.01, weightDecay: 0.1)
        try (p * Tensor([3, -0.5])).sum().backward()
        opt.step()
        // Decay first (p·(1 − lr·wd)), then a step of lr·sign(g) since m̂/√v̂ = ±1.
        #expect(abs(p.data[0] - (1 * 0.999 - 0.01)) < 1e-6)
        #expect(abs(p.data[1] - (-2 * 0.999 + 0.01)) < 1e-6)
    }

    @Test func cosineWarmupSchedule() {
        let s = CosineWarmupSchedule(baseLR: 1, warmupSteps: 4, totalSteps: 14, minLR: 0.1)
        #expect(s.learningRate(at: 0) == 0.25)
        #expect(s.learningRate(at: 3) == 1)
        #expect(s.learningRate(at: 4) == 1)
        #expect(abs(s.learningRate(at: 9) - 0.55) < 1e-6)
        #expect(abs(s.learningRate(at: 14) - 0.1) < 1e-6)
        #expect(abs(s.learningRate(at: 100) - 0.1) < 1e-6)
    }

    @Test func clippingByGlobalNorm() throws {
        let a = try Tensor(shape: [2], data: [0, 0], requiresGrad: true)
        let b = try Tensor(shape: [1], data: [0], requiresGrad: true)
        a.grad = Tensor([3, 0])
        b.grad = Tensor([4])
        let norm = clipGradNorm([a, b], maxNorm: 1)
        #expect(abs(norm - 5) < 1e-6)
        #expect(abs(a.grad!.data[0] - 0.6) < 1e-5 && abs(b.grad!.data[0] - 0.8) < 1e-5)
    }
}

@Suite struct LearningTests {
    /// Four well-separated clusters in the plane; an MLP must fit them exactly.
    @Test func mlpLearnsClustersToNearZeroLoss() throws {
        let rng = RandomGenerator(seed: 42)
        let centres: [(Float, Float)] = [(2, 2), (-2, 2), (-2, -2), (2, -2)]
        var points: [Float] = [], labels: [Int] = []
        for i in 0..<64 {
            let c = i % 4
            points += [centres[c].0 + 0.5 * rng.normal(), centres[c].1 + 0.5 * rng.normal()]
            labels.append(c)
        }
        let x = try Tensor(shape: [64, 2], data: points)
        let model = Sequential([Linear(2, 32, rng: rng), GELU(), BatchNorm1d(32), Linear(32, 4, rng: rng)])
        let opt = AdamW(model.parameters(), learningRate: 0.05, weightDecay: 0)
        let schedule = CosineWarmupSchedule(baseLR: 0.05, warmupSteps: 10, totalSteps: 150)
        var loss: Float = .infinity
        for step in 0..<150 {
            opt.learningRate = schedule.learningRate(at: step)
            opt.zeroGrad()
            let l = try Losses.crossEntropy(model(x), targets: labels)
            try l.backward()
            clipGradNorm(model.parameters(), maxNorm: 5)
            opt.step()
            loss = l.item
        }
        #expect(loss < 0.02)
        model.eval()
        let logits = try Autograd.noGrad { try model(x) }
        let predicted = try logits.argmaxLastAxis()
        #expect(predicted == labels)
    }
}
