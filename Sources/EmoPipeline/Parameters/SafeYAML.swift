import EmoCore
import Foundation
import Yams

/// Reads the YAML of manifests, pipeline files and `--set` values within fixed bounds, so a hostile
/// file is refused quickly instead of exhausting memory or the stack:
/// - a file over `maxBytes` is refused before it is read;
/// - parsing runs on a thread with a large stack, so deep nesting (libyaml allows 1,000 levels) cannot overflow it;
/// - the document, with every alias expanded, may hold at most `maxNodes` nodes, `maxExpandedBytes`
///   of scalar text, and nest at most `maxDepth` levels ("billion laughs" files are a few hundred
///   bytes that expand without bound; one long string aliased thousands of times, gigabytes).
public enum SafeYAML {
    public static let maxBytes = 256 * 1024
    public static let maxNodes = 20_000
    public static let maxDepth = 32
    public static let maxExpandedBytes = 1 << 20

    /// The file's text, or an error naming it.
    public static func read(path: String, what: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw PipelineError.invalidFile("\(path.shownPath): cannot read the \(what) (\(String(cString: strerror(errno))))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw PipelineError.invalidFile("\(path.shownPath): the \(what) is not a regular file") }
        guard info.st_size <= maxBytes else {
            throw PipelineError.invalidFile("\(path.shownPath): the \(what) is \(info.st_size) bytes; at most \(maxBytes) are read")
        }
        let data: Data
        do { data = try RegularFile.read(path, atMost: maxBytes) } catch {
            let reason = EmoError.reason(of: error)
            // Out of descriptors or memory is the machine's state, not a wrong file: a failure (1), not a usage error (64).
            if OpenFileLimit.ranOut(reason) || reason.contains(String(cString: strerror(ENOMEM))) {
                throw EmoError.io(path: path, reason: "cannot read the \(what) (\(reason))")
            }
            throw PipelineError.invalidFile("\(path.shownPath): cannot read the \(what) (\(reason))")
        }
        guard data.count <= maxBytes else {
            throw PipelineError.invalidFile("\(path.shownPath): the \(what) is \(data.count) bytes; at most \(maxBytes) are read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PipelineError.invalidFile("\(path.shownPath): the \(what) is not UTF-8 text")
        }
        return text
    }

    /// The first document's node tree, checked against the bounds; nil for an empty document.
    public static func compose(_ text: String, origin: String) throws -> Node? {
        guard text.utf8.count <= maxBytes else {
            throw PipelineError.invalidFile("\(origin): \(text.utf8.count) bytes of YAML; at most \(maxBytes) are read")
        }
        // The values are read by YAML 1.2's rules (010 is ten, `yes` is text): a file asking for 1.1's would
        // silently mean something else than its author wrote.
        // Directives come before the document: only the lines up to its first content (or `---`) are read.
        let head = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated().prefix {
            let line = $0.element.trimmingCharacters(in: .whitespaces)
            return line.isEmpty || line.hasPrefix("#") || line.hasPrefix("%")
        }
        if let directive = head.first(where: {
            $0.element.hasPrefix("%YAML") && $0.element.split(whereSeparator: \.isWhitespace).dropFirst().first != "1.2"
        }) {
            throw PipelineError.invalidFile("\(origin): line \(directive.offset + 1): \(String(directive.element).echoed): values are read by YAML 1.2's rules "
                                            + "(010 is ten, yes is text, not a boolean); remove the directive, or make it %YAML 1.2")
        }
        let node: Node?
        do { node = try onLargeStack { try Yams.compose(yaml: text) } } catch let error as PipelineError { throw error }
        catch let error as EmoError { throw error }   // the parser could not start: not the file's fault
        catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
            // Yams prints the whole mapping flattened; its mark is the first duplicated key's first place.
            let keys = duplicates.sorted().map { "'\($0.echoed)'" }
            let named = keys.count == 1 ? "the key \(keys[0])" : "the keys " + keys.joined(separator: ", ")
            throw PipelineError.invalidFile("\(origin): \(named) (first on line \(context.mark.line)) "
                                            + "\(keys.count == 1 ? "is" : "are") given more than once in one mapping: give each key once")
        } catch {
            throw PipelineError.invalidFile("\(origin): not valid YAML: \(oneLine(error))\(hint(for: "\(error)", in: text))")
        }
        if let node {
            var budget = Budget()
            try check(node, depth: 0, budget: &budget, origin: origin)
        }
        return node
    }

    /// What libyaml's message leaves unsaid: an alias inside the node its anchor names (recursive) is "undefined",
    /// and a key past 1024 characters (libyaml's bound on an implicit key) makes it look for a ':' that is there.
    static func hint(for message: String, in text: String) -> String {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        if message.contains("found undefined alias") {
            guard let (name, line, column) = alias(at: message, lines: lines) else {
                return " (an alias needs an anchor of its name on a node before it; one inside that node would make it contain itself)"
            }
            // Where an anchor of exactly that name (`&t`, not `&tt`) stands, as (line, column) pairs; not in comments
            // (from a `#` that starts the line or follows a space, as near as a look at the text can tell).
            let anchors = lines.enumerated().flatMap { index, whole in
                let text = whole.indices.first { whole[$0] == "#" && ($0 == whole.startIndex || whole[whole.index(before: $0)].isWhitespace) }
                    .map { whole[..<$0] } ?? whole[...]
                return text.ranges(of: "&" + name).filter { range in
                    text[range.upperBound...].first.map { $0.isWhitespace || ",[]{}".contains($0) } ?? true
                }.map { (index + 1, text.distance(from: text.startIndex, to: $0.lowerBound) + 1) }
            }
            if anchors.contains(where: { $0 < (line, column) }) {
                return " (the alias *\(name) lies inside the node its anchor &\(name) names: it would contain itself)"
            }
            return anchors.isEmpty ? " (no anchor &\(name) is defined: an alias repeats a node marked earlier with its anchor)"
                : " (its anchor &\(name) comes only after it: an alias repeats a node marked earlier with its anchor)"
        }
        let keyBound = 1024
        if message.contains("could not find expected ':'") || message.contains("did not find expected") || message.contains("mapping values are not allowed"),
           let index = lines.firstIndex(where: { line in line.count > keyBound && holdsKey(longerThan: keyBound, line) }) {
            return " (line \(index + 1) has a key of more than \(keyBound) characters, longer than libyaml reads a key: shorten it)"
        }
        return ""
    }

    /// Whether `line` holds more than `bound` characters of a name (none of whitespace, `:{}[],`) followed, after
    /// any whitespace, by `:`. One pass: the regex it replaces backtracked over every start of a long run, and a
    /// 60 KB comment line in a broken manifest took minutes to refuse.
    static func holdsKey(longerThan bound: Int, _ line: Substring) -> Bool {
        var run = 0, ended = 0   // the name being read; one that whitespace ended, still waiting for its ':'
        for character in line {
            if character == ":" {
                if max(run, ended) > bound { return true }
                (run, ended) = (0, 0)
            } else if character.isWhitespace {
                if run > 0 { (run, ended) = (0, run) }
            } else if "{}[],".contains(character) {
                (run, ended) = (0, 0)
            } else {
                (run, ended) = (run + 1, 0)
            }
        }
        return false
    }

    /// The name of the alias at the place libyaml's message starts with ("LINE:COLUMN: …"), read from the text,
    /// with that place.
    static func alias(at message: String, lines: [Substring]) -> (name: String, line: Int, column: Int)? {
        let place = message.prefix { $0 != " " }.split(separator: ":")
        guard place.count >= 2, let line = Int(place[0]), let column = Int(place[1]), lines.indices.contains(line - 1) else { return nil }
        let text = lines[line - 1]
        guard column >= 1, column <= text.count else { return nil }
        let from = text.dropFirst(column - 1)
        guard from.first == "*" else { return nil }
        let name = from.dropFirst().prefix { !$0.isWhitespace && !",[]{}".contains($0) }
        return name.isEmpty ? nil : (String(name), line, column)
    }

    /// A document or a `--set` value as a parameter value.
    public static func value(_ text: String, origin: String) throws -> ParamValue {
        guard let node = try compose(text, origin: origin) else { return .null }
        return try ParamValue(yaml: node, origin: origin)
    }

    /// What the document may still hold as the check walks it.
    private struct Budget {
        var nodes = maxNodes
        var bytes = maxExpandedBytes
    }

    private static func check(_ node: Node, depth: Int, budget: inout Budget, origin: String) throws {
        budget.nodes -= 1
        guard budget.nodes >= 0 else {
            throw PipelineError.invalidFile("\(origin): the YAML expands to more than \(maxNodes) nodes (anchors and aliases included); refused")
        }
        guard depth <= maxDepth else {
            throw PipelineError.invalidFile("\(origin): the YAML nests deeper than \(maxDepth) levels; refused")
        }
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                // Every mapping EmoPipe reads is keyed by names: a list or mapping as a key (`? [a, b]`) is refused here, where the file is known.
                guard key.scalar != nil else {
                    throw PipelineError.invalidFile("\(origin): line \(key.mark.map { "\($0.line)" } ?? "?"): a mapping key must be a plain name, not a list or mapping")
                }
                try check(key, depth: depth + 1, budget: &budget, origin: origin)
                try check(value, depth: depth + 1, budget: &budget, origin: origin)
            }
        case .sequence(let sequence):
            for item in sequence { try check(item, depth: depth + 1, budget: &budget, origin: origin) }
        case .scalar(let scalar):
            budget.bytes -= scalar.string.utf8.count
            guard budget.bytes >= 0 else {
                throw PipelineError.invalidFile("\(origin): the YAML expands to more than \(maxExpandedBytes) bytes of text (anchors and aliases included); refused")
            }
        case .alias:
            return
        }
    }

    /// Yams composes recursively: a file of a few kilobytes can nest deep enough to overflow a small
    /// thread stack. libyaml stops at 1,000 levels ("Maximum nesting level reached"), which measured
    /// within an 8 MB stack; the parsing thread gets 64 MB. Created with pthread so that a failure
    /// (an address-space limit, `ulimit -v`) is an error rather than a wait for a thread that never ran.
    static let parserStackBytes = 64 << 20

    private static func onLargeStack<T>(_ body: @escaping () throws -> T) throws -> T {
        let box = ResultBox<T>()
        switch NativeThread.spawn(stackBytes: parserStackBytes, { box.result = Result { try body() } }) {
        case .success(let thread): pthread_join(thread, nil)
        case .failure(let cannot):
            throw EmoError.invalidConfiguration("cannot start the thread that reads YAML (\(parserStackBytes >> 20) MB of stack: "
                                                + "\(cannot.reason)); the limits on threads or address space (ulimit -u, ulimit -v) may be too low")
        }
        guard let result = box.result else { throw PipelineError.invalidFile("the YAML parser did not finish") }
        return try result.get()
    }

    /// The parser's message on one line, cut short: it quotes the offending line, which may be long.
    private static func oneLine(_ error: Error) -> String {
        let text = "\(error)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        // Yams quotes the offending line raw: escape what could steer a terminal.
        return (text.count <= 240 ? text : String(text.prefix(240)) + "…").echoed
    }
}

/// Carries a result from the parsing thread back to the caller, which joins the thread.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
