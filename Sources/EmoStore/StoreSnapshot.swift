import EmoCore
import Foundation
import GRDB

extension ProvenanceStore {
    /// Writes a consistent copy of the whole database to `path` (SQLite's `VACUUM INTO`), for a
    /// sweep worker that starts from the main work directory's provenance. `path` must not exist.
    public func snapshot(to path: String) throws {
        do {
            try pool.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [path]) }
        } catch {
            throw EmoError.io(path: path, reason: "cannot copy the provenance database \(self.path) there: \(error)")
        }
    }
}
