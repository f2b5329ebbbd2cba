import Testing
@testable import EmoMedia

@Suite("raster")
struct RasterTests {
    /// A pasted picture lands pixel for pixel at its corner; the part outside the canvas is left out and
    /// the rest of the canvas keeps its pixels.
    @Test(arguments: [(1, 1), (-1, 2), (3, -2), (9, 0), (0, 0)])
    func pastePlacesEachPixelAndClipsAtTheEdges(corner: (Int, Int)) {
        let (x, y) = corner
        let canvasPixels = (0..<(5 * 4 * 3)).map { UInt8($0) }
        var canvas = Raster(width: 5, height: 4, channels: 3, pixels: canvasPixels)
        let piece = Raster(width: 3, height: 3, channels: 3, pixels: (0..<27).map { UInt8(200 + $0) })
        let pasted = canvas.paste(piece, x: x, y: y)
        #expect(pasted)
        for row in 0..<4 {
            for column in 0..<5 {
                for channel in 0..<3 {
                    let (px, py) = (column - x, row - y)
                    let inside = (0..<3).contains(px) && (0..<3).contains(py)
                    let expected = inside ? piece.pixels[(py * 3 + px) * 3 + channel] : canvasPixels[(row * 5 + column) * 3 + channel]
                    #expect(canvas.pixels[(row * 5 + column) * 3 + channel] == expected, "(\(column), \(row)) channel \(channel), corner \(corner)")
                }
            }
        }
    }

    /// A picture of another number of channels is not pasted (nor does it stop the process), and an offset near
    /// the integers' end does not overflow.
    @Test func pasteRefusesOtherChannelsAndFarOffsets() {
        var canvas = Raster(width: 4, height: 4, channels: 3, pixels: [UInt8](repeating: 7, count: 48))
        let gray = canvas.paste(Raster(width: 2, height: 2, channels: 1), x: 0, y: 0)
        let far = canvas.paste(Raster(width: 2, height: 2, channels: 3), x: Int.max - 1, y: Int.min + 1)
        #expect(!gray && far)
        #expect(canvas.pixels.allSatisfy { $0 == 7 })
    }
}
