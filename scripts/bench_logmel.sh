#!/usr/bin/env bash
# Micro-benchmark of EmoFeatures' log-mel (µs per clip, both presets), without touching the main
# package's manifest: builds scripts/logmel-bench/main.swift against Sources/EmoFeatures in a
# throwaway SwiftPM package (release), then runs it.
#
#   scripts/bench_logmel.sh                 # synthetic 3.5 s clip
#   scripts/bench_logmel.sh a.wav b.wav     # 16 kHz WAVs (e.g. made with ffmpeg -ar 16000 -ac 1)
#   ITERATIONS=1000 scripts/bench_logmel.sh
#
# Reports wall time and the calling thread's CPU time per clip (the CPU figure is the one to
# trust on a busy machine), and the throughput of one shared extractor on every core.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${BENCH_DIR:-${TMPDIR:-/tmp}/emopipe-logmel-bench}"
mkdir -p "$work/Sources/EmoFeaturesBench"
for t in CFFmpeg CSndFile EmoFeatures; do ln -sfn "$repo/Sources/$t" "$work/Sources/$t"; done
cp "$repo/scripts/logmel-bench/main.swift" "$work/Sources/EmoFeaturesBench/main.swift"
cat > "$work/Package.swift" <<'MANIFEST'
// swift-tools-version:6.0
import PackageDescription
let swift5: [SwiftSetting] = [.swiftLanguageMode(.v5)]
let package = Package(name: "LogMelBench", targets: [
    .systemLibrary(name: "CFFmpeg", pkgConfig: "libavformat"),
    .systemLibrary(name: "CSndFile", pkgConfig: "sndfile"),
    .target(name: "EmoFeatures", dependencies: ["CFFmpeg"], swiftSettings: swift5),
    .executableTarget(name: "EmoFeaturesBench", dependencies: ["EmoFeatures", "CSndFile"], swiftSettings: swift5),
])
MANIFEST
(cd "$work" && ${SWIFT:-swift} build -c release --product EmoFeaturesBench >&2)
exec "$work/.build/release/EmoFeaturesBench" --iterations "${ITERATIONS:-300}" "$@"
