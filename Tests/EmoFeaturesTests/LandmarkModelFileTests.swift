// Landmark model files written here in dlib's serialization format: a small well-formed model loads and
// fits 68 points; files whose declared counts outrun their bytes, whose indices point outside what they
// index or whose numbers are not finite are refused by name before dlib allocates or evaluates anything.
@testable import EmoFeatures
import EmoMedia
import EmoTestSupport
import Foundation
import Testing

/// Writes dlib's serialization: an integer is a control byte (byte count, 0x80 when negative) and its
/// magnitude's bytes, least significant first; a float is an integer mantissa and exponent.
private struct DlibWriter {
    var bytes: [UInt8] = []

    mutating func int(_ value: Int64) {
        var magnitude = value.magnitude
        var body: [UInt8] = []
        repeat {
            body.append(UInt8(magnitude & 0xFF))
            magnitude >>= 8
        } while magnitude != 0
        bytes.append(UInt8(body.count) | (value < 0 ? 0x80 : 0))
        bytes += body
    }

    mutating func count(_ value: Int) { int(Int64(value)) }

    /// Values that are small integers (all this file needs), or not finite: dlib's special exponents.
    mutating func float(_ value: Float) {
        if value.isNaN { int(0); int(32002) }
        else if value.isInfinite { int(0); int(value > 0 ? 32000 : 32001) }
        else { int(Int64(value)); int(0) }
    }

    /// A matrix<float,0,1> in dlib's newer format (both sizes negated).
    mutating func column(_ values: [Float]) {
        int(-Int64(values.count))
        int(-1)
        values.forEach { float($0) }
    }
}

/// A one-cascade, one-tree model: `pixels` sampled pixels anchored on points 0, 1, 2, ...; one split
/// comparing pixels `split.0` and `split.1`; two leaves that each move every coordinate a little.
private struct TinyModel {
    var points = 68
    var cascades = 1
    var pixels = 3
    var split = (0, 2)
    var threshold: Float = 0
    var leaves = 2
    var anchor = 1
    var declaredCascades: Int?

    var bytes: [UInt8] {
        var w = DlibWriter()
        w.int(1)
        w.column((0..<(2 * points)).map { Float($0 % 7) })
        w.count(declaredCascades ?? cascades)
        for _ in 0..<cascades {
            w.count(1)
            w.count(1)
            w.count(split.0); w.count(split.1); w.float(threshold)
            w.count(leaves)
            for leaf in 0..<leaves { w.column([Float](repeating: Float(leaf), count: 2 * points)) }
        }
        w.count(cascades)
        for _ in 0..<cascades {
            w.count(pixels)
            for p in 0..<pixels { w.count(p == 0 ? anchor : p) }
        }
        w.count(cascades)
        for _ in 0..<cascades {
            w.count(pixels)
            for _ in 0..<pixels { w.float(1); w.float(0) }
        }
        return w.bytes
    }

    func written(in folder: String, as name: String) throws -> String {
        let path = folder + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)   // a new inode each time
        return path
    }
}

@Suite struct LandmarkModelFileTests {
    private func problem(_ path: String) -> String? {
        FaceParameters(align: true, landmarkModel: path).landmarkModelProblem()?.allowed
    }

    @Test func aSmallWellFormedModelLoadsAndFitsSixtyEightPoints() throws {
        let folder = try TestSupport.temporaryFolder("landmarks")
        let path = try TinyModel().written(in: folder, as: "tiny.dat")
        #expect(problem(path) == nil)
        let model = try LandmarkModel(path: path)
        let gray = Raster(width: 64, height: 64, channels: 1, pixels: (0..<(64 * 64)).map { UInt8($0 % 251) })
        let points = try model.landmarks(gray, box: Rect(8, 8, 56, 56))
        #expect(points.count == 68 && points.allSatisfy { $0.0.isFinite && $0.1.isFinite })
    }

    @Test func aModelIsLoadedOncePerProcessWhileItsFileStaysTheSame() throws {
        let folder = try TestSupport.temporaryFolder("landmarks")
        let path = try TinyModel().written(in: folder, as: "shared.dat")
        let first = try LandmarkModel.shared(path: path)
        #expect(try LandmarkModel.shared(path: path) === first)
        _ = try TinyModel(threshold: 3).written(in: folder, as: "shared.dat")   // a new file at the same path
        #expect(try LandmarkModel.shared(path: path) !== first)
    }

    @Test func countsTheFileCannotHoldAreRefusedBeforeAnythingIsAllocated() throws {
        let folder = try TestSupport.temporaryFolder("landmarks")
        // 2^40 cascades would be a 26 TB vector to dlib; the file has 4 bytes left.
        let huge = try TinyModel(cascades: 0, declaredCascades: 1 << 40).written(in: folder, as: "huge.dat")
        let said = try #require(problem(huge))
        #expect(said.contains("cascades") && said.contains("1099511627776") && said.contains("more than its remaining"), "\(said)")

        // A matrix that declares more values than there are bytes left.
        var w = DlibWriter()
        w.int(1); w.int(-(1 << 36)); w.int(-1)
        let column = folder + "/column.dat"
        try Data(w.bytes).write(to: URL(fileURLWithPath: column))
        let columnSaid = try #require(problem(column))
        #expect(columnSaid.contains("the initial shape") && columnSaid.contains("68719476736"), "\(columnSaid)")
    }

    @Test func indicesOutsideWhatTheyIndexAreRefused() throws {
        let folder = try TestSupport.temporaryFolder("landmarks")
        let cases: [(TinyModel, String)] = [
            (TinyModel(split: (0, 5)), "reads pixel 5 of a cascade with 3"),
            (TinyModel(anchor: 68), "an anchor point 68 is out of range"),
            (TinyModel(leaves: 3), "3 leaves for 1 splits"),
            (TinyModel(points: 5), "has 5 points, not 68"),
        ]
        for (index, (model, expected)) in cases.enumerated() {
            let said = try #require(problem(try model.written(in: folder, as: "case\(index).dat")))
            #expect(said.contains("dlib cannot load it") && said.contains(expected), "\(said)")
        }
    }

    @Test func numbersThatAreNotFiniteAreRefused() throws {
        let folder = try TestSupport.temporaryFolder("landmarks")
        for (name, value) in [("nan", Float.nan), ("inf", Float.infinity)] {
            let said = try #require(problem(try TinyModel(threshold: value).written(in: folder, as: "\(name).dat")))
            #expect(said.contains("a split's threshold is not a finite number"), "\(said)")
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: FaceParameters().landmarkModel), "needs libdlib-data"))
    func debiansModelPassesTheCheck() {
        #expect(problem(FaceParameters().landmarkModel) == nil)
    }
}
