public final class MaxPool2d: Module, UnaryLayer {
    public let kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)

    public init(_ kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) {
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.maxPool2d(kernel: kernel, stride: stride, padding: padding)
    }
}

public final class AvgPool2d: Module, UnaryLayer {
    public let kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)

    public init(_ kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) {
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.avgPool2d(kernel: kernel, stride: stride, padding: padding)
    }
}

public final class AdaptiveAvgPool2d: Module, UnaryLayer {
    public let size: (Int, Int)

    public init(_ size: (Int, Int)) {
        self.size = size
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.adaptiveAvgPool2d(size) }
}

/// [N, C, H, W] → [N, C].
public final class GlobalAvgPool2d: Module, UnaryLayer {
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.globalAvgPool2d() }
}
