import EmoCore
import Testing

/// Names echoed in messages stay on one line, cannot steer a terminal, and stay short.
struct EchoTests {
    @Test func controlAndBidiCharactersAreEscapedAndPlainTextIsKept() {
        #expect("train".echoed == "train")
        #expect("é漢字 a.b".echoed == "é漢字 a.b")
        #expect("a\nb\tc".echoed == "a\\nb\\tc")
        #expect("x\u{1B}[31my".echoed == "x\\u{1B}[31my")
        #expect("x\u{0}y\u{7F}".echoed == "x\\u{0}y\\u{7F}")
        #expect("abc\u{202E}def".echoed == "abc\\u{202E}def")
        // A joiner is a format character too, but harmless: emoji sequences keep it.
        #expect("a\u{200D}b".echoed == "a\u{200D}b")
    }

    /// A line that names a file drops the name from a message that starts with it, once, and only as a whole lead.
    @Test func aMessageLosesOnlyTheLeadThatNamesItsSubject() {
        #expect("a/b.wav: no such file".withoutLead("a/b.wav") == "no such file")
        #expect("a/b.wav: a/b.wav: twice".withoutLead("a/b.wav") == "a/b.wav: twice")
        #expect("a/b.wavx: other file".withoutLead("a/b.wav") == "a/b.wavx: other file")
        #expect("a/b.wav:no space".withoutLead("a/b.wav") == "a/b.wav:no space")
        #expect("train: stopped".withoutLead("") == "train: stopped")
    }

    @Test func aLongTextIsCutAndSaysItsLength() {
        let long = String(repeating: "k", count: 60_000)
        let echoed = long.echoed
        #expect(echoed.hasPrefix(String(repeating: "k", count: 160) + "… (60000 characters)"))
        #expect(echoed.count == 160 + "… (60000 characters)".count)
        // Megabytes are cut the same way, escaped, and said in bytes (counting their characters takes seconds).
        let blob = "\u{1B}é" + String(repeating: "k", count: 5_000_000)
        #expect(blob.echoed == "\\u{1B}é" + String(repeating: "k", count: 153) + "… (5000003 bytes)")
        let edge = String(repeating: "k", count: 200)
        #expect(edge.echoed == edge, "200 characters are kept whole")
    }

    /// A recorded message (a failure's reason) is listed whole up to 4 KB, escaped; one of megabytes (an edited
    /// database) is cut to 2,000 characters and says its length.
    @Test func aRecordedMessageIsListedWholeUnlessItIsMegabytes() {
        let reason = "libavformat said: " + String(repeating: "x", count: 3000) + "\u{1B}"
        #expect(reason.escapedRecorded == reason.escaped)
        let edited = "\u{1B}" + String(repeating: "r", count: 10_000_000)
        #expect(edited.escapedRecorded == "\\u{1B}" + String(repeating: "r", count: 1994) + "… (10000001 bytes)")
    }

    /// A cut falls between escapes: a long run of control characters ends in a whole `\u{…}`, never in half of one.
    @Test func aCutNeverSplitsAnEscape() {
        let controls = String(repeating: "\u{1B}", count: 100)   // 6 characters each once escaped
        let echoed = controls.echoed
        let head = String(echoed[..<echoed.range(of: "… (")!.lowerBound])
        #expect(head == String(repeating: "\\u{1B}", count: 26), "26 escapes fill 156 of 160 characters; a 27th would be cut")
        let blob = String(repeating: "\u{7}", count: 70_000)   // over 64 KiB: the bytes path
        #expect(blob.echoed == String(repeating: "\\u{7}", count: 32) + "… (70000 bytes)")
        // One character of 30,000 combining marks is long text: cut in scalars (it came back whole, 60 KB), in
        // linear time (counting pieces again took seconds).
        let marks = "a" + String(repeating: "\u{301}", count: 30_000) + String(repeating: "b", count: 300)
        #expect(marks.echoed == "a" + String(repeating: "\u{301}", count: 159) + "… (301 characters)")
        let cluster = "a" + String(repeating: "\u{301}", count: 30_000)
        #expect(cluster.echoed.utf8.count < 400 && cluster.echoed.hasSuffix("… (1 characters)"), "\(cluster.echoed.utf8.count) bytes")
        let key = String(repeating: "\u{200B}", count: 40)   // 8 characters each once spelt out
        #expect(key.shownKey == String(repeating: "\\u{200B}", count: 20) + "… (120 bytes)")
    }

    /// Keys are printable ASCII: a space, an invisible character or a lookalike in one is spelt out.
    @Test func aKeyShowsWhatIsNotPrintableASCII() {
        #expect("epochs".shownKey == "epochs")
        #expect("epochs ".shownKey == "epochs\\u{20}")
        #expect("\u{200B}epochs".shownKey == "\\u{200B}epochs")
        #expect("\u{212A}".shownKey == "\\u{212A}", "a Kelvin sign, not K")
        #expect("a\nb".shownKey == "a\\u{A}b")
        let long = String(repeating: "k", count: 300)
        #expect(long.shownKey == String(repeating: "k", count: 160) + "… (300 bytes)")
    }

    /// Long JSON text is cut between its own escapes, as between the echo's: `\u0001` whole or not at all.
    @Test func longJSONIsCutBetweenItsEscapes() {
        let json = "\"" + String(repeating: "\\u0001", count: 100) + "\""
        #expect(json.echoedJSON == "\"" + String(repeating: "\\u0001", count: 26) + "… (602 characters)")
        #expect(json.echoed.hasSuffix("\\u0… (602 characters)"), "the plain echo cuts inside one")
        let quoted = "[" + String(repeating: "\"a\\\"b\",", count: 40) + "1]"
        #expect(quoted.echoedJSON.hasPrefix("[\"a\\\"b\",") && quoted.echoedJSON.contains("\\\"b\",\"a\\\"b\",\"") == true)
        #expect(!quoted.echoedJSON.dropLast(" (330 characters)".count + 1).hasSuffix("\\"), "\(quoted.echoedJSON)")
        #expect("{\"k\":1}".echoedJSON == "{\"k\":1}", "short text is the echo")
        let controls = "\"" + String(repeating: "x\u{1B}", count: 150) + "\""
        #expect(controls.echoedJSON == "\"" + String(repeating: "x\\u{1B}", count: 22) + "x… (302 characters)", "a raw control character is escaped, then counted whole")
    }

    @Test func anEmptyPathIsSaidToBeOneAndOthersAreEscaped() {
        #expect("".shownPath == "(an empty path)")
        #expect(EmoError.io(path: "", reason: "cannot read").description == "(an empty path): cannot read")
        #expect("/w/a\nb".shownPath == "/w/a\\nb")
    }

    @Test func aPathIsEscapedButKeptWhole() {
        let path = "/tmp/" + String(repeating: "p", count: 5000) + "\u{1B}[2J\n"
        #expect(path.escaped == "/tmp/" + String(repeating: "p", count: 5000) + "\\u{1B}[2J\\n")
        #expect(path.escaped.hasPrefix(String(path.echoed.prefix(160))), "echoed is escaped, then cut")
    }

    /// Bad bytes become `\xHH`, valid characters of any length stay, a backslash is doubled; and a long
    /// argument is shown in time linear in its length (the earlier way retried every shorter prefix).
    @Test func invalidUTF8IsShownWithItsBadBytesEscaped() {
        #expect(InvalidUTF8.shown([0x64, 0xFF]) == "d\\xff")
        #expect(InvalidUTF8.shown(Array("é🙂".utf8) + [0xC3]) == "é🙂\\xc3", "a lead byte without its continuation")
        #expect(InvalidUTF8.shown([0x5C, 0x80, 0x41]) == "\\\\\\x80A")
        #expect(InvalidUTF8.shown([]) == "")
        let long = [UInt8](repeating: 0x61, count: 200_000) + [0xFE]
        #expect(InvalidUTF8.shown(long) == String(repeating: "a", count: 200_000) + "\\xfe")
    }

}
