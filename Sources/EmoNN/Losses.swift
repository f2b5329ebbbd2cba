// Loss functions.

public enum Losses {
    /// Cross-entropy over logits [N, C] and integer targets, matching
    /// torch.nn.functional.cross_entropy: optional class weights, label
    /// smoothing, and the weighted mean (divided by the targets' total weight).
    public static func crossEntropy(_ logits: Tensor, targets: [Int], weight: Tensor? = nil,
                                    labelSmoothing: Float = 0) throws -> Tensor {
        guard logits.rank == 2 else {
            throw ShapeError("crossEntropy", logits.shape, [targets.count], "logits must be [N, C]")
        }
        let (n, c) = (logits.shape[0], logits.shape[1])
        guard targets.count == n else {
            throw ShapeError("crossEntropy", logits.shape, [targets.count], "one target per row needed")
        }
        if let weight, weight.shape != [c] {
            throw ShapeError("crossEntropy", logits.shape, weight.shape, "class weights must be [C]")
        }
        if targets.contains(where: { $0 < 0 || $0 >= c }) {
            throw NNError.invalidArgument("crossEntropy: a target is outside 0..<\(c)")
        }
        return try weightedNLL(logits.logSoftmax(axis: 1), targets: targets, weight: weight,
                               labelSmoothing: labelSmoothing, classes: c)
    }

    /// −Σᵢ qᵢ·logp / Σᵢ w[yᵢ] where q mixes the one-hot target and the uniform
    /// smoothing distribution, both scaled by class weight.
    private static func weightedNLL(_ logp: Tensor, targets: [Int], weight: Tensor?,
                                    labelSmoothing eps: Float, classes c: Int) throws -> Tensor {
        let w = weight?.data ?? [Float](repeating: 1, count: c)
        let n = targets.count
        let total = targets.reduce(Float(0)) { $0 + w[$1] }
        var coeff = [Float](repeating: 0, count: n * c)
        for (i, y) in targets.enumerated() {
            for j in 0..<c { coeff[i * c + j] = eps / Float(c) * w[j] }
            coeff[i * c + y] += (1 - eps) * w[y]
        }
        let q = Tensor(raw: [n, c], coeff.map { -$0 / total })
        return try logp.multiplying(q).sum()
    }

    public static func mse(_ prediction: Tensor, _ target: Tensor) throws -> Tensor {
        guard prediction.shape == target.shape else {
            throw ShapeError("mse", prediction.shape, target.shape, "prediction and target differ")
        }
        return try prediction.subtracting(target).square().mean()
    }
}
