import CDNNL
import COpenBLAS

/// The versions of the numeric libraries this binary runs with, recorded with every run, and
/// the GEMM kernels in use (`gemm_kernel`), so that a slow machine explains itself.
public enum NumericLibraries {
    public static var versions: [String: String] {
        GEMMKernel.ensureSelected()     // the config string names the kernel table: choose it first
        var versions = ["openblas": String(cString: openblas_get_config()),
                        "gemm_kernel": GEMMKernel.selection.summary]
        if let dnnl = dnnl_version()?.pointee {
            versions["onednn"] = "\(dnnl.major).\(dnnl.minor).\(dnnl.patch)"
        }
        return versions
    }
}
