import CDNNL
import COpenBLAS

/// The versions of the numeric libraries this binary runs with, recorded with every run.
public enum NumericLibraries {
    public static var versions: [String: String] {
        var versions = ["openblas": String(cString: openblas_get_config())]
        if let dnnl = dnnl_version()?.pointee {
            versions["onednn"] = "\(dnnl.major).\(dnnl.minor).\(dnnl.patch)"
        }
        return versions
    }
}
