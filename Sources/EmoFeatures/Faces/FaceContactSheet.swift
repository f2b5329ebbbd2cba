// A contact sheet for people to look at: one row per clip with its label, the K crops (a bar under each:
// green = detected, orange = borrowed from neighbours, red = damaged frame) and a thumbnail of the middle
// sampled frame with the tracked box (green/orange) and any other detections (red). PNG via EmoMedia.
import EmoMedia
import Foundation

public enum FaceContactSheet {
    static let pad = 6, labelH = 14, barH = 4

    /// The sheet's pixels for `rows` clips of `crops` crops of `cropSize` pixels, with thumbnails as wide and as tall as given.
    public static func size(rows: Int, crops: Int, cropSize: Int, thumbnailWidth: Int, thumbnailHeight: Int) -> (width: Int, height: Int) {
        let rowH = labelH + max(cropSize + barH + 2, thumbnailHeight) + pad
        return (pad + crops * (cropSize + 2) + pad + thumbnailWidth + pad, pad + rows * rowH)
    }

    /// Whether a sheet this large can be encoded as one PNG.
    public static func encodable(width: Int, height: Int) -> Bool { PNGEncoder.fits(width: width, height: height) }

    /// `thumbnail` is usually `clip.thumbnail` (from `extract(path:thumbnailWidth:)`); nil leaves the space empty.
    public static func render(clips: [(label: String, clip: FaceClip, thumbnail: FaceThumbnail?)]) throws -> Data {
        guard !clips.isEmpty else { throw FaceError.invalidParameters("a contact sheet needs at least one clip") }
        let cropCount = clips.map { $0.clip.frames.count }.max()!
        let cropSize = clips.map(\.clip.size).max()!
        let thumbW = clips.compactMap { $0.thumbnail?.width }.max() ?? 0
        let thumbH = clips.compactMap { $0.thumbnail?.height }.max() ?? 0
        let (width, height) = size(rows: clips.count, crops: cropCount, cropSize: cropSize, thumbnailWidth: thumbW, thumbnailHeight: thumbH)
        let rowH = labelH + max(cropSize + barH + 2, thumbH) + pad
        var canvas = Canvas(width: width, height: height, fill: (32, 32, 36))

        for (r, item) in clips.enumerated() {
            let top = pad + r * rowH
            let clip = item.clip
            let found = clip.frames.filter(\.found).count
            var label = "\(item.label)  FACE \(found)/\(clip.frames.count)  \(clip.width)X\(clip.height)"
            if clip.rotation != 0 { label += "  ROT \(clip.rotation)" }
            if clip.truncated { label += "  TRUNCATED" }
            canvas.text(label, x: pad, y: top + 2, scale: 2, color: (230, 230, 230))
            let y0 = top + labelH
            for k in 0..<clip.frames.count {
                let x0 = pad + k * (cropSize + 2)
                canvas.blit(Array(clip.crop(k)), width: clip.size, height: clip.size, x: x0, y: y0)
                let f = clip.frames[k]
                let color: (UInt8, UInt8, UInt8) = f.damaged ? (220, 40, 40) : (f.found ? (40, 200, 70) : (240, 150, 20))
                canvas.fill(x: x0, y: y0 + clip.size + 1, w: clip.size, h: barH, color: color)
            }
            if let t = item.thumbnail {
                let tx = pad + cropCount * (cropSize + 2) + pad
                canvas.blit(t.rgb, width: t.width, height: t.height, x: tx, y: y0)
                for d in t.detections {
                    canvas.rect(Rect(d).scaled(t.scale), dx: tx, dy: y0, thickness: 1, color: (230, 40, 40))
                }
                if t.frameIndex < clip.frames.count {
                    let f = clip.frames[t.frameIndex]
                    canvas.rect(Rect(f.box).scaled(t.scale), dx: tx, dy: y0, thickness: 2,
                                color: f.found ? (40, 220, 70) : (240, 150, 20))
                }
            }
        }
        do {
            return try PNGEncoder.encode(rgb: canvas.pixels, width: width, height: height, name: "contact sheet")
        } catch {
            guard case .encodeFailed(_, let reason) = error else { throw FaceError.media(error) }
            throw FaceError.decodeFailed(reason)
        }
    }
}

struct Canvas {
    let width: Int, height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8)) {
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        self.fill(x: 0, y: 0, w: width, h: height, color: fill)
    }

    mutating func set(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = c.0; pixels[i + 1] = c.1; pixels[i + 2] = c.2
    }

    /// The part of a box on the canvas; a box wholly off it (a label longer than a narrow sheet) is empty.
    mutating func fill(x: Int, y: Int, w: Int, h: Int, color: (UInt8, UInt8, UInt8)) {
        let (left, right) = (max(0, x), min(width, x + w)), (top, bottom) = (max(0, y), min(height, y + h))
        guard left < right, top < bottom else { return }
        for yy in top..<bottom { for xx in left..<right { set(xx, yy, color) } }
    }

    mutating func blit(_ rgb: [UInt8], width w: Int, height h: Int, x: Int, y: Int) {
        guard x >= 0 else { return }
        for yy in 0..<h where y + yy >= 0 && y + yy < height {
            let n = min(w, width - x)
            guard n > 0 else { return }
            let d = ((y + yy) * width + x) * 3
            pixels.replaceSubrange(d..<(d + n * 3), with: rgb[(yy * w * 3)..<(yy * w * 3 + n * 3)])
        }
    }

    mutating func rect(_ r: Rect, dx: Int, dy: Int, thickness: Int, color: (UInt8, UInt8, UInt8)) {
        // Drawn within a margin of the canvas: a box far off it draws nothing, and takes no time.
        let limit = Double(width + height + thickness)
        guard [r.x0, r.y0, r.x1, r.y1].allSatisfy({ $0.isFinite && abs($0) <= limit }) else { return }
        let x0 = Int(r.x0.rounded()) + dx, y0 = Int(r.y0.rounded()) + dy
        let x1 = Int(r.x1.rounded()) + dx - 1, y1 = Int(r.y1.rounded()) + dy - 1
        for t in 0..<thickness {
            for x in x0...max(x0, x1) { set(x, y0 + t, color); set(x, y1 - t, color) }
            for y in y0...max(y0, y1) { set(x0 + t, y, color); set(x1 - t, y, color) }
        }
    }

    mutating func text(_ s: String, x: Int, y: Int, scale: Int, color: (UInt8, UInt8, UInt8)) {
        var cx = x
        for ch in s.uppercased() {
            if let bits = Font.glyphs[ch] {
                for (i, bit) in bits.enumerated() where bit == "1" {
                    fill(x: cx + (i % 3) * scale, y: y + (i / 3) * scale, w: scale, h: scale, color: color)
                }
            }
            cx += 4 * scale
        }
    }
}

/// A 3x5 pixel font: rows top to bottom, 3 columns each.
enum Font {
    static let glyphs: [Character: String] = [
        "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
        "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
        "8": "111101111101111", "9": "111101111001111",
        "A": "010101111101101", "B": "110101110101110", "C": "011100100100011", "D": "110101101101110",
        "E": "111100110100111", "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
        "I": "111010010010111", "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
        "M": "101111111101101", "N": "110101101101101", "O": "010101101101010", "P": "110101110100100",
        "Q": "010101101110011", "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
        "U": "101101101101111", "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
        "Y": "101101010010010", "Z": "111001010100111",
        "-": "000000111000000", "_": "000000000000111", ".": "000000000000010", "/": "001001010100100",
        ":": "000010000010000", "%": "101001010100101", "(": "010100100100010", ")": "010001001001010",
        " ": "000000000000000",
    ]
}
