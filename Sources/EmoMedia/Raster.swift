// Decoded pictures handed to other layers: plain 8-bit buffers, no libav types.
import EmoCore

/// An 8-bit image, row-major, tightly packed: 1 channel (gray) or 3 (RGB).
public struct Raster: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]? = nil) {
        self.width = width; self.height = height; self.channels = channels
        self.pixels = pixels ?? [UInt8](repeating: 0, count: width * height * channels)
    }

    /// Copies `other` onto this picture with its top-left corner at (`x`, `y`); the part that would fall outside
    /// is left out. Returns false, pasting nothing, when `other` has another number of channels.
    @discardableResult
    public mutating func paste(_ other: Raster, x: Int, y: Int) -> Bool {
        guard other.channels == channels else { return false }
        let left = max(0, x), right = min(width, x.clampedAdding(other.width))
        let top = max(0, y), bottom = min(height, y.clampedAdding(other.height))
        guard left < right, top < bottom else { return true }
        let rowBytes = (right - left) * channels
        for row in top..<bottom {
            let from = ((row - y) * other.width + (left - x)) * channels
            let to = (row * width + left) * channels
            pixels.replaceSubrange(to..<(to + rowBytes), with: other.pixels[from..<(from + rowBytes)])
        }
        return true
    }

    /// Turns the picture clockwise by 0, 90, 180 or 270 degrees (exact pixel moves), e.g. by a video
    /// stream's display rotation to make it upright.
    public func rotated(clockwise degrees: Int) -> Raster {
        guard degrees % 360 != 0 else { return self }
        let c = channels, w = width, h = height
        let quarter = degrees % 180 != 0
        var out = Raster(width: quarter ? h : w, height: quarter ? w : h, channels: c)
        let ow = out.width, oh = out.height
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        let sx: Int, sy: Int
                        switch degrees {
                        case 90: sx = y; sy = h - 1 - x
                        case 180: sx = w - 1 - x; sy = h - 1 - y
                        default: sx = w - 1 - y; sy = x  // 270
                        }
                        let s = (sy * w + sx) * c, d = (y * ow + x) * c
                        for k in 0..<c { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        return out
    }
}
