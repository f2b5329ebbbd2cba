import EmoCore
import EmoTestSupport
import Foundation
import Testing

@Suite("hashing and progress")
struct HashingAndProgressTests {
    @Test func streamedFileHashAgreesWithSha256sum() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // 2.5 MiB of varied bytes: several 1 MiB reads plus a partial one.
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<(5 << 19)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let path = folder + "/blob.bin"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (hex, size) = try SHA256Hex.file(atPath: path)
        #expect(size == Int64(bytes.count))
        #expect(hex == (try TestSupport.sha256sum(path)))
        #expect(SHA256Hex.of(Data(bytes)) == hex)
    }

    @Test func unreadableFileIsATypedError() {
        #expect(throws: EmoError.self) { try SHA256Hex.file(atPath: "/nonexistent/file.wav") }
    }

    /// A pipe would block a plain open and /dev/zero would never end: both are refused unread.
    @Test func aPipeOrADeviceIsRefusedWithoutBeingRead() throws {
        let pipe = try TestSupport.temporaryFolder("hash") + "/03-01-01-01-01-01-01.wav"
        try #require(mkfifo(pipe, 0o644) == 0)
        for path in [pipe, "/dev/zero"] {
            let error = try #require(throws: EmoError.self) { try SHA256Hex.file(atPath: path) }
            #expect(error.description.contains(path) && error.description.contains("not a regular file"), "\(error)")
        }
    }

    /// /proc files are regular files of size 0 that read on (pagemap for hundreds of GB): they are refused
    /// as the kernel's before a byte is read.
    @Test func aFileOfTheKernelIsRefusedUnread() throws {
        for path in ["/proc/self/status", "/proc/self/pagemap"] {
            let error = try #require(throws: EmoError.self) { try SHA256Hex.file(atPath: path) }
            #expect(error == EmoError.io(path: path, reason: RegularFile.kernelFile), "\(error)")
        }
    }

    /// A file cut while it is read gives fewer bytes than it had: its digest is of no version of it.
    @Test func aFileCutWhileReadIsRefused() throws {
        let path = try TestSupport.temporaryFolder("hash") + "/03-01-01-01-01-01-01.wav"
        try Data(repeating: 7, count: 3 << 20).write(to: URL(fileURLWithPath: path))
        var asked = 0
        let error = try #require(throws: EmoError.self) {
            try SHA256Hex.file(atPath: path, stopped: {
                asked += 1
                if asked == 2 { truncate(path, 3 << 19) }   // after the first megabyte: cut to 1.5 MiB
                return false
            })
        }
        #expect(error == .io(path: path, reason: "gave 1572864 bytes but had 3145728 when opened: it shrank while being read; not read"), "\(error)")
    }

    /// A file written to while it is read yields more bytes than it had: refused once its size is passed, so
    /// hashing ends whatever the writer does.
    @Test func aFileGrowingWhileReadIsRefused() throws {
        let path = try TestSupport.temporaryFolder("hash") + "/03-01-01-01-01-01-01.wav"
        try Data(repeating: 7, count: (1 << 20) + 10).write(to: URL(fileURLWithPath: path))
        var asked = 0
        let error = try #require(throws: EmoError.self) {
            try SHA256Hex.file(atPath: path, stopped: {
                asked += 1
                if asked == 2, let handle = FileHandle(forWritingAtPath: path) {   // after the first megabyte: 2 MiB more
                    handle.seekToEndOfFile()
                    handle.write(Data(repeating: 8, count: 2 << 20))
                    try? handle.close()
                }
                return false
            })
        }
        #expect(error == .io(path: path, reason: "holds more bytes than its size on disk (1048586): it is being written to, "
                             + "or is not a file of fixed size; not read"), "\(error)")
    }

    @Test func progressLogsPlainLinesWhenNotOnATerminal() {
        let lines = LockedLines()
        let progress = ProgressReporter(label: "ingest", total: 4, unit: "files", isTerminal: false,
                                        logInterval: 0, write: lines.append)
        for _ in 0..<4 { progress.advance() }
        progress.finish()
        let text = lines.all
        #expect(text.allSatisfy { !$0.contains("\r") })
        // A log line: the time it was written, the level, the label and the figures.
        #expect(text.allSatisfy { $0.wholeMatch(of: #/\d\d:\d\d:\d\d info    ingest: \d/4 \(\d+%\) [^\n]+\n?/#) != nil }, "\(text)")
        #expect(text.last?.dropFirst(9).hasPrefix("info    ingest: 4/4 (100%)") == true)
        #expect(text.last?.contains("files/s in") == true)
        #expect(text.dropLast().contains { $0.contains("ETA") })
    }

    /// Work that ends within `quietFor` prints nothing; work that outlasts it prints as usual.
    @Test func quickWorkPrintsNoProgressLine() {
        let quick = LockedLines()
        let quiet = ProgressReporter(label: "predict", total: 2, unit: "files", isTerminal: false, logInterval: 0,
                                     quietFor: 60, write: quick.append)
        quiet.advance(); quiet.advance(); quiet.finish()
        #expect(quick.all.isEmpty, "\(quick.all)")
        let slow = LockedLines()
        let shown = ProgressReporter(label: "predict", total: 2, unit: "files", isTerminal: false, logInterval: 0,
                                     quietFor: 0.05, write: slow.append)
        shown.advance()
        Thread.sleep(forTimeInterval: 0.1)
        shown.advance(); shown.finish()
        #expect(slow.all.count == 1 && slow.all.last?.contains(" predict: 2/2 (100%)") == true, "\(slow.all)")
    }

    /// One item that takes long (a huge clip) still draws the line, saying how long so far; none after
    /// the work is finished.
    @Test func aHeartbeatDrawsTheLineWhileOneItemTakesLong() {
        let lines = LockedLines()
        let progress = ProgressReporter(label: "faces", total: 3, unit: "files", isTerminal: false, logInterval: 0.05,
                                        heartbeat: true, write: lines.append)
        // Waits for the timer rather than timing it: at most 10 s on a loaded machine.
        let deadline = Date().addingTimeInterval(10)
        while lines.all.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(lines.all.first?.contains(" faces: 0/3 (0%) 0.0 files/s, ") == true && lines.all.first?.contains(" so far") == true,
                "\(lines.all)")
        progress.advance(by: 3)
        progress.finish()
        let count = lines.all.count
        #expect(lines.all.last?.contains(" faces: 3/3 (100%)") == true, "\(lines.all)")
        Thread.sleep(forTimeInterval: 0.2)
        #expect(lines.all.count == count, "no heartbeat after finish: \(lines.all)")
    }

    @Test func durationsReadNaturally() {
        #expect(ProgressReporter.duration(3.25) == "3.2s" || ProgressReporter.duration(3.25) == "3.3s")
        #expect(ProgressReporter.duration(75) == "1m15s")
        #expect(ProgressReporter.duration(7260) == "2h01m")
        // A damaged record's seconds (SQLite reads 9e999 as infinity) print as a number; Int() of them trapped.
        #expect(ProgressReporter.duration(.infinity) == "infs" && ProgressReporter.duration(.nan) == "nans")
        #expect(ProgressReporter.duration(9.3e18) == "9.3e+18s" && ProgressReporter.duration(-1e300) == "-1e+300s")
    }

    @Test func measuredFiguresKeepTheirDecimalsUntilTheyStopBeingMeasurements() {
        #expect(12.34.fixedText(places: 1) == "12.3" && 181.6.fixedText(places: 0) == "182" && 0.61234.fixedText(places: 4) == "0.6123")
        #expect(999_999_999_999_999.0.fixedText(places: 0) == "999999999999999")
        // An edited record's 1e308 seconds printed as 309 digits.
        #expect(1e308.fixedText(places: 1) == "1e+308" && (-2e15).fixedText(places: 1) == "-2e+15")
        #expect(Double.infinity.fixedText(places: 1) == "inf" && Double.nan.fixedText(places: 4) == "nan")
        let usage = ResourceUsage(seconds: 1e308, cpuSeconds: 1e308, peakRSSMB: 1e300)
        #expect(usage.line == "cpu 1e+308 s, peak RSS 1e+300 MB")
    }
}

final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines.map { $0.trimmingCharacters(in: .newlines) } }
}
