import Foundation

/// Writes NumPy's `.npy` format (version 1.0), which `numpy.load` reads.
public enum NumpyFile {
    public static func encode(dtype: DType, shape: [Int], data: Data) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(dtype.numpyDescriptor)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + newline must be a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var file = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        file.appendLE(UInt16(header.utf8.count))
        file.append(Data(header.utf8))
        file.append(contentsOf: data)
        return file
    }
}
