/// 2-D convolution layer with PyTorch's weight layout [O, C/groups, kh, kw]
/// and its default (Kaiming-uniform, a=√5) initialisation bound 1/√fan_in.
public final class Conv2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let options: Conv2dOptions

    public init(_ inChannels: Int, _ outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1,
                bias: Bool = true, rng: RandomGenerator) {
        let fanIn = inChannels / groups * kernel.0 * kernel.1
        let bound = 1 / Float(fanIn).squareRoot()
        weight = Tensor.uniform([outChannels, inChannels / groups, kernel.0, kernel.1],
                                low: -bound, high: bound, rng: rng).requiringGrad()
        self.bias = bias ? Tensor.uniform([outChannels], low: -bound, high: bound, rng: rng).requiringGrad() : nil
        options = Conv2dOptions(stride: stride, padding: padding, dilation: dilation, groups: groups)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.conv2d(weight: weight, bias: bias, options: options)
    }
}
