import Testing
@testable import EmoNN

@Suite struct RecurrentTests {
    @Test func lstmNamesShapesAndGradients() throws {
        let lstm = LSTM(3, 2, bidirectional: true, rng: RandomGenerator(seed: 1))
        #expect(lstm.namedParameters().map(\.0) == [
            "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
            "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
        ])
        let x = randomTensor([2, 4, 3], seed: 2)
        #expect(try lstm(x).shape == [2, 4, 4])
        #expect(try gradientCheck([x] + lstm.parameters()) { _ in try lstm(x) } < 2e-2)
        #expect(throws: ShapeError.self) { try lstm(Tensor.zeros([2, 4, 5])) }
    }

    @Test func gruGradients() throws {
        let gru = GRU(3, 2, bidirectional: true, rng: RandomGenerator(seed: 3))
        let x = randomTensor([2, 3, 3], seed: 4)
        #expect(try gru(x).shape == [2, 3, 4])
        #expect(try gradientCheck([x] + gru.parameters()) { _ in try gru(x) } < 2e-2)
    }

    /// The reverse direction of a bidirectional layer sees the sequence
    /// backwards: its output at the last step depends only on the last input.
    @Test func reverseDirectionStartsAtTheEnd() throws {
        let gru = GRU(2, 3, bidirectional: true, rng: RandomGenerator(seed: 5))
        let a = randomTensor([1, 4, 2], seed: 6)
        let b = a.detached()
        b.data[0] += 1  // change the first step only
        let (ya, yb) = (try gru(a), try gru(b))
        // Last step: forward half changes, reverse half (indices 3..<6) does not.
        let last = 3 * 6
        #expect(ya.data[(last + 3)..<(last + 6)] == yb.data[(last + 3)..<(last + 6)])
        #expect(ya.data[last..<(last + 3)] != yb.data[last..<(last + 3)])
    }
}

@Suite struct DropoutTests {
    @Test func seededScaledAndIdentityInEval() throws {
        let x = Tensor.ones([1000])
        let a = try x.dropout(0.25, rng: RandomGenerator(seed: 9))
        let b = try x.dropout(0.25, rng: RandomGenerator(seed: 9))
        #expect(a.data == b.data)
        let kept = a.data.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 4.0 / 3.0) < 1e-6 })
        #expect(abs(Float(kept.count) / 1000 - 0.75) < 0.05)
        let layer = Dropout(0.5, rng: RandomGenerator(seed: 1))
        layer.eval()
        #expect(try layer(x).data == x.data)
        let m = RandomGenerator(seed: 3)
        let y = randomTensor([3, 4], seed: 10)
        // Same mask on every evaluation: reseed before each forward.
        #expect(try gradientCheck([y]) { v in
            m.state = RandomGenerator(seed: 3).state
            return try v[0].dropout(0.3, rng: m)
        } < 1e-2)
    }
}
