import Foundation
import Testing
@testable import EmoNN

@Suite struct SafeTensorsTests {
    @Test func roundTripKeepsBitsNamesAndMetadata() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emonn-rt-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let t = try Tensor(shape: [2, 3], data: [1, -0.0, .infinity, Float.leastNonzeroMagnitude, 3.25, -7])
        let file = SafeTensorsFile(tensors: ["a.weight": t, "scalar": Tensor(scalar: 2)],
                                   integers: ["rng": [Int64.min, -1, 0, Int64.max]],
                                   metadata: ["note": "quote \" and \\ kept"])
        try file.write(to: url)
        let back = try SafeTensorsFile.read(from: url)
        #expect(back.tensors["a.weight"]?.shape == [2, 3])
        #expect(back.tensors["a.weight"]?.data.map(\.bitPattern) == t.data.map(\.bitPattern))
        #expect(back.tensors["scalar"]?.shape == [])
        #expect(back.integers["rng"] == [Int64.min, -1, 0, Int64.max])
        #expect(back.metadata["note"] == "quote \" and \\ kept")
        let raw = try Data(contentsOf: url)
        let headerLength = raw.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
    }

    /// A file is replaced whole: writing over one leaves the new bytes and no temporary file beside them,
    /// and a write that cannot happen leaves the old file as it was.
    @Test func aWriteReplacesTheFileWholeOrLeavesItAsItWas() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("emonn-replace-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("checkpoint.safetensors")
        try SafeTensorsFile(tensors: ["w": Tensor(shape: [3], data: [1, 2, 3])]).write(to: url)
        try SafeTensorsFile(tensors: ["w": Tensor(shape: [2], data: [4, 5])], integers: ["step": [7]]).write(to: url)
        let back = try SafeTensorsFile.read(from: url)
        #expect(back.tensors["w"]?.data == [4, 5] && back.integers["step"] == [7])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["checkpoint.safetensors"])
        // A write that cannot happen (a folder where its temporary file goes) leaves the old file as it was.
        let before = try Data(contentsOf: url)
        let temporary = folder.appendingPathComponent(".checkpoint.safetensors.part-\(getpid())").path
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        #expect(throws: NNError.self) { try SafeTensorsFile(tensors: ["w": Tensor(shape: [1], data: [9])]).write(to: url) }
        #expect(try Data(contentsOf: url) == before)
        try FileManager.default.removeItem(atPath: temporary)
        // A link planted under the temporary name is not written through: the file it leads to stays as it was.
        let victim = folder.appendingPathComponent("victim")
        try Data("keep".utf8).write(to: victim)
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: victim.path)
        try SafeTensorsFile(tensors: ["w": Tensor(shape: [1], data: [6])]).write(to: url)
        #expect(try Data(contentsOf: victim) == Data("keep".utf8))
        #expect(try SafeTensorsFile.read(from: url).tensors["w"]?.data == [6])
        let missing = folder.appendingPathComponent("gone/checkpoint.safetensors")
        #expect(throws: NNError.self) { try SafeTensorsFile(tensors: ["w": Tensor(shape: [1], data: [9])]).write(to: missing) }
    }

    @Test func rejectsTruncatedFiles() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emonn-bad-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data([200, 0, 0, 0, 0, 0, 0, 0, 123]).write(to: url)
        #expect(throws: NNError.self) { try SafeTensorsFile.read(from: url) }
    }

    /// A header may claim shapes and offsets whose products or sums overflow: each is a format
    /// error naming the entry, never a trap or a huge allocation.
    @Test(arguments: [
        #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
        #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,9223372036854775807]}}"#,
        #"{"w":{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,0]}}"#,
        #"{"w":{"dtype":"I64","shape":[2305843009213693952],"data_offsets":[0,8]}}"#,
        #"{"w":{"dtype":"F32","shape":[-2,-1],"data_offsets":[0,8]}}"#,
        #"{"w":{"dtype":"F32","shape":[0,-1],"data_offsets":[0,0]}}"#,
        #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
    ])
    func rejectsHeadersThatClaimTooMuch(header: String) throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emonn-claim-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        var headerBytes = Data(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var length = UInt64(headerBytes.count).littleEndian
        try (Data(bytes: &length, count: 8) + headerBytes + Data(count: 8)).write(to: url)
        #expect {
            try SafeTensorsFile.read(from: url)
        } throws: { error in
            error is NNError && ["bad entry for w", ": w: ", "tensor w: "].contains { "\(error)".contains($0) }
        }
        #expect(SafeTensorsFile.elementCount([2, 3, 4], atMost: 24) == 24)
        #expect(SafeTensorsFile.elementCount([0, 5], atMost: 0) == 0)
        #expect(SafeTensorsFile.elementCount([5, 0], atMost: 0) == 0, "an empty tensor whatever the zero's place")
    }
}

@Suite struct ResumeTests {
    final class Net: Module {
        let body: Sequential
        init(rng: RandomGenerator) {
            body = Sequential([Linear(4, 16, rng: rng), BatchNorm1d(16), GELU(), Dropout(0.2, rng: rng),
                               Linear(16, 3, rng: rng)])
            super.init()
        }
    }

    /// Trains with data, dropout masks and schedule all drawn from `rng`.
    static func train(_ net: Net, _ opt: AdamW, _ rng: RandomGenerator, steps: Range<Int>) throws {
        let schedule = CosineWarmupSchedule(baseLR: 0.01, warmupSteps: 2, totalSteps: 8)
        for step in steps {
            let x = Tensor.randn([8, 4], rng: rng)
            let y = (0..<8).map { _ in Int(rng.next() % 3) }
            opt.learningRate = schedule.learningRate(at: step)
            opt.zeroGrad()
            let loss = try Losses.crossEntropy(net.body(x), targets: y, labelSmoothing: 0.1)
            try loss.backward()
            clipGradNorm(net.parameters(), maxNorm: 1)
            opt.step()
        }
    }

    @Test func resumedRunMatchesUninterruptedRunBitForBit() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emonn-ckpt-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }

        let rngA = RandomGenerator(seed: 11)
        let netA = Net(rng: rngA)
        let optA = AdamW(netA.parameters(), weightDecay: 0.05)
        try Self.train(netA, optA, rngA, steps: 0..<8)

        let rngB = RandomGenerator(seed: 11)
        let netB = Net(rng: rngB)
        let optB = AdamW(netB.parameters(), weightDecay: 0.05)
        try Self.train(netB, optB, rngB, steps: 0..<4)
        try Checkpoint.save(to: url, model: netB, optimizer: optB, rng: rngB, step: 4)

        // A fresh process's worth of objects, deliberately seeded differently.
        let rngC = RandomGenerator(seed: 999)
        let netC = Net(rng: rngC)
        let optC = AdamW(netC.parameters(), weightDecay: 0.05)
        let step = try Checkpoint.load(from: url, model: netC, optimizer: optC, rng: rngC)
        #expect(step == 4)
        #expect(optC.stepCount == 4)
        try Self.train(netC, optC, rngC, steps: step..<8)

        for ((name, a), (_, c)) in zip(netA.namedParameters() + netA.namedBuffers(),
                                       netC.namedParameters() + netC.namedBuffers()) {
            #expect(a.data.map(\.bitPattern) == c.data.map(\.bitPattern), "\(name) differs")
        }
        let file = try SafeTensorsFile.read(from: url)
        #expect(file.tensors["optimizer.body.0.weight.exp_avg"] != nil)
        #expect(file.tensors["body.1.running_var"] != nil)
        #expect(file.integers["rng.state"]?.count == 4)
    }

    @Test func sgdMomentumStateSurvivesACheckpoint() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emonn-sgd-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        func step(_ net: Linear, _ opt: SGD) throws {
            opt.zeroGrad()
            try net(Tensor.ones([2, 3])).square().sum().backward()
            opt.step()
        }
        let a = Linear(3, 2, rng: RandomGenerator(seed: 8)), b = Linear(3, 2, rng: RandomGenerator(seed: 8))
        let optA = SGD(a.parameters(), learningRate: 0.01, momentum: 0.9)
        let optB = SGD(b.parameters(), learningRate: 0.01, momentum: 0.9)
        for _ in 0..<3 { try step(a, optA) }
        for _ in 0..<2 { try step(b, optB) }
        try Checkpoint.save(to: url, model: b, optimizer: optB, step: 2)
        let c = Linear(3, 2, rng: RandomGenerator(seed: 99))
        let optC = SGD(c.parameters(), learningRate: 0.5, momentum: 0.9)
        try Checkpoint.load(from: url, model: c, optimizer: optC)
        #expect(optC.learningRate == 0.01)
        try step(c, optC)
        #expect(a.weight.data.map(\.bitPattern) == c.weight.data.map(\.bitPattern))
        #expect(try SafeTensorsFile.read(from: url).tensors["optimizer.weight.momentum_buffer"] != nil)
    }

    /// A file far larger than any checkpoint of the model (a huge file put in its place) is refused by its
    /// size, having read no more than that bound, whatever its header claims; the model's own loads.
    @Test func aFileLargerThanAnyCheckpointOfTheModelIsRefusedBeforeItIsRead() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emonn-huge-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let net = Linear(3, 2, rng: RandomGenerator(seed: 8))
        try Checkpoint.save(to: url, model: net, step: 1)
        let bound = Checkpoint.maximumBytes(model: net, trainingState: false)
        #expect(bound == 4 * (3 * 2 + 2) + 64 << 20)
        try Checkpoint.load(from: url, model: Linear(3, 2, rng: RandomGenerator(seed: 9)))
        // Sparse: the file claims its size without taking the disk.
        #expect(truncate(url.path, off_t(bound + 1)) == 0)
        #expect { try Checkpoint.load(from: url, model: net) } throws: {
            "\($0)".contains("holds more than \(bound) bytes, more than any checkpoint of this model")
        }
    }

    @Test func sameSeedSameBits() throws {
        func run() throws -> [UInt32] {
            let rng = RandomGenerator(seed: 5)
            let net = Net(rng: rng)
            let opt = AdamW(net.parameters())
            try Self.train(net, opt, rng, steps: 0..<3)
            return net.parameters().flatMap { $0.data.map(\.bitPattern) }
        }
        #expect(try run() == run())
    }

    /// Two tensors sharing bytes, and a header that is not JSON at all, are format errors that say so.
    @Test func rejectsOverlappingTensorsAndAHeaderThatIsNotJSON() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emonn-overlap-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        func write(_ header: String) throws {
            var bytes = Data(header.utf8)
            while bytes.count % 8 != 0 { bytes.append(0x20) }
            var length = UInt64(bytes.count).littleEndian
            try (Data(bytes: &length, count: 8) + bytes + Data(count: 16)).write(to: url)
        }
        try write(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#)
        #expect { try SafeTensorsFile.read(from: url) } throws: { "\($0)".contains("tensors a and b share bytes (0..<8 and 4..<12)") }
        try write(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#)
        #expect(try SafeTensorsFile.read(from: url).tensors.count == 2, "end to end is fine")
        try write("")
        #expect { try SafeTensorsFile.read(from: url) } throws: { $0 is NNError && "\($0)".contains("header is not a JSON object") }
        // Offsets out of the file, or reversed, are named as such (they once read as tensors sharing bytes).
        try write(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,1000000000000]}}"#)
        #expect { try SafeTensorsFile.read(from: url) } throws: {
            "\($0)".contains("tensor b: data_offsets [8, 1000000000000] reach past the 16 bytes of tensor data after the header (the file is cut short")
        }
        try write(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[-4,4]}}"#)
        #expect { try SafeTensorsFile.read(from: url) } throws: { "\($0)".contains("tensor b: data_offsets [-4, 4] are not 0 <= begin <= end") }
    }
}
