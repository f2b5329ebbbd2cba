import CDlibShim

/// The version of dlib (face detection) this binary runs with, recorded with every run.
public enum FeatureLibraries {
    public static var versions: [String: String] { ["dlib": String(cString: dlibshim_version())] }
}
