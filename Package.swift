// swift-tools-version:6.0
// EmoPipe: one target per layer; imports point down the layers only.
//
//   emopipe (CLI) → EmoStages → EmoPipeline → EmoStore → EmoCore
//                            ↘ EmoFeatures → EmoMedia → (FFmpeg, libsndfile)
//                                          ↘ EmoCore (parameter errors)
//                            ↘ EmoModel → EmoNN
//                                       ↘ EmoCore (the JSON convention of model.json)
import PackageDescription

let swift5: [SwiftSetting] = [.swiftLanguageMode(.v5)]
/// Numeric kernels are optimised even in debug builds: unoptimised, training in the test suite
/// would take minutes instead of seconds.
let optimisedSwift5: [SwiftSetting] = swift5 + [.unsafeFlags(["-O"])]

let package = Package(
    name: "EmoPipe",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "emopipe", targets: ["emopipe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // C libraries from Debian's -dev packages.
        .systemLibrary(name: "CFFmpeg", pkgConfig: "libavformat",
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev",
                                         "libswscale-dev", "libswresample-dev"])]),
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        // CRC-32C with the SSE4.2 instruction, for shard records.
        .target(name: "CCRC32C"),
        // Reads of a mapped shard that survive the file being cut short meanwhile (SIGBUS caught).
        .target(name: "CGuardedRead", dependencies: ["CCRC32C"]),
        // The CPU's vector instruction sets (CPUID + XGETBV), for choosing BLAS kernels.
        .target(name: "CCPUFeatures"),
        // dlib's HOG face detector and 68-point landmarks behind a C API. -O2 even in debug
        // builds: dlib's templates are unusably slow unoptimised.
        .target(name: "CDlibShim",
                cxxSettings: [.unsafeFlags(["-O2"])],
                linkerSettings: [.linkedLibrary("dlib"), .linkedLibrary("lapack"), .linkedLibrary("blas"),
                                 .linkedLibrary("pthread")]),

        // Dataset vocabulary (RAVDESS names, labels), hashing, progress, logging.
        .target(name: "EmoCore", dependencies: [
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swift5),
        // Media probing and decoding (audio and video), the only target that calls FFmpeg; and libsndfile.
        .target(name: "EmoMedia", dependencies: ["EmoCore", "CFFmpeg", "CSndFile"], swiftSettings: swift5),
        // Features computed from decoded media: log-mel spectrograms, face crops.
        .target(name: "EmoFeatures", dependencies: ["EmoCore", "EmoMedia", "CDlibShim"], swiftSettings: swift5),
        // Provenance database (SQLite through GRDB) and the sharded tensor cache.
        .target(name: "EmoStore", dependencies: [
            "EmoCore", "CCRC32C", "CGuardedRead", .product(name: "GRDB", package: "GRDB.swift"),
        ], swiftSettings: swift5),
        // DAG definitions, manifests, fingerprints, the work-directory lock, the runner.
        .target(name: "EmoPipeline", dependencies: ["EmoCore", "EmoStore", "Yams"], swiftSettings: swift5),
        // Neural-network engine: tensors, autograd, layers, optimizers. Knows nothing of media.
        .target(name: "EmoNN", dependencies: ["EmoCore", "COpenBLAS", "CDNNL", "CCPUFeatures"], swiftSettings: optimisedSwift5),
        // ONNX's protobuf schema, generated once from onnx.proto and committed.
        .target(name: "ONNXSchema", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: swift5),
        // The multimodal emotion model built on the engine, its training, evaluation and ONNX export.
        .target(name: "EmoModel", dependencies: ["EmoCore", "EmoNN", "ONNXSchema"], swiftSettings: optimisedSwift5),
        // The pipeline's stages, one file each.
        .target(name: "EmoStages", dependencies: [
            "EmoCore", "EmoMedia", "EmoFeatures", "EmoStore", "EmoPipeline", "EmoNN", "EmoModel",
        ], swiftSettings: swift5),
        // The command-line interface.
        .executableTarget(name: "emopipe", dependencies: [
            "EmoStages", "EmoPipeline", "EmoStore", "EmoCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: swift5),

        // Benchmark drivers for `make bench`: cache read throughput; engine training steps.
        .executableTarget(name: "emopipe-bench", dependencies: ["EmoStore", "EmoCore"], swiftSettings: swift5),
        .executableTarget(name: "emonn-bench", dependencies: ["EmoNN", "CDNNL"], swiftSettings: swift5),
        .executableTarget(name: "emoface-bench", dependencies: ["EmoFeatures", "EmoMedia"], swiftSettings: swift5),
        // Seeded random-input testing for `make fuzz`: the name parser, probe/decode, the shard reader, manifests.
        .executableTarget(name: "emopipe-fuzz", dependencies: [
            "EmoCore", "EmoMedia", "EmoStore", "EmoPipeline", "EmoStages", "CCRC32C",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: swift5),

        // Shared by the test targets: the shared data's location, temp folders, running commands and
        // oracle tools, WAV files through libsndfile, raw float files, a seeded generator.
        .target(name: "EmoTestSupport", dependencies: ["CSndFile", "EmoCore"], path: "Tests/EmoTestSupport", swiftSettings: swift5),
        .testTarget(name: "EmoCoreTests", dependencies: ["EmoCore", "EmoTestSupport"], swiftSettings: swift5),
        .testTarget(name: "EmoMediaTests", dependencies: ["EmoMedia", "EmoTestSupport"], swiftSettings: swift5),
        .testTarget(name: "EmoFeaturesTests", dependencies: ["EmoCore", "EmoFeatures", "EmoMedia", "EmoTestSupport"],
                    exclude: ["Fixtures"], swiftSettings: swift5),
        .testTarget(name: "EmoStoreTests", dependencies: ["EmoStore", "EmoCore", "EmoTestSupport"], swiftSettings: swift5),
        .testTarget(name: "EmoPipelineTests", dependencies: ["EmoPipeline", "EmoStore", "EmoCore", "EmoTestSupport", "Yams"],
                    exclude: ["Fixtures"], swiftSettings: swift5),
        .testTarget(name: "EmoStagesTests", dependencies: ["EmoStages", "EmoPipeline", "EmoStore", "EmoCore", "EmoMedia", "EmoTestSupport"], swiftSettings: swift5),
        .testTarget(name: "EmoModelTests", dependencies: ["EmoModel", "EmoNN", "EmoStore", "EmoTestSupport"],
                    exclude: ["Fixtures"], swiftSettings: swift5),
        .testTarget(name: "EmoNNTests", dependencies: ["EmoNN", "EmoTestSupport"], exclude: ["Fixtures"], swiftSettings: swift5),
        // Runs the built emopipe-fuzz for a few seconds per target (it spans EmoCore, EmoMedia and EmoStore).
        .testTarget(name: "EmoFuzzTests", dependencies: ["EmoTestSupport"], swiftSettings: swift5),
    ],
    cxxLanguageStandard: .cxx17
)
