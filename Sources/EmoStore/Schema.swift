import GRDB

/// The provenance schema. Migrations are the one source of the schema: add a new migration,
/// never edit a shipped one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: runs, sources, stages, failures, artifacts") { db in
            try db.create(table: "run") { t in
                t.primaryKey("id", .text)                       // e.g. 20261125-131800-ab12cd
                t.column("command", .text).notNull()
                t.column("manifestJSON", .text).notNull()
                t.column("manifestSHA256", .text).notNull()
                t.column("dataRoot", .text).notNull()
                t.column("threads", .integer).notNull()
                t.column("codeVersion", .text).notNull()
                t.column("host", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("status", .text).notNull()             // RunStatus: running, done, partial, failed, interrupted
                t.column("exitCode", .integer)
            }
            try db.create(table: "source") { t in
                t.primaryKey("path", .text)                     // absolute, standardised
                t.column("sha256", .text)                       // nil only when the file could not be read
                t.column("size", .integer).notNull()
                t.column("mtimeNanos", .integer).notNull()
                t.column("kind", .text)                         // wav, mp4; nil when ignored
                t.column("modality", .integer)
                t.column("channel", .integer)
                t.column("emotion", .integer)
                t.column("intensity", .integer)
                t.column("statement", .integer)
                t.column("repetition", .integer)
                t.column("actor", .integer)
                t.column("clip", .text).indexed()
                t.column("status", .text).notNull().indexed()   // ok, failed, ignored, removed
                t.column("reason", .text)
                t.column("probeJSON", .text)
                t.column("firstSeenRun", .text).notNull().references("run")
                t.column("lastChangedRun", .text).notNull().references("run")
            }
            try db.create(index: "source_sha256", on: "source", columns: ["sha256"])
            try db.create(table: "stageRun") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("runId", .text).notNull().references("run").indexed()
                t.column("stage", .text).notNull()
                t.column("fingerprint", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("state", .text).notNull()              // StageRunState: running, done, partial, failed, interrupted, up-to-date
                t.column("unitsDone", .integer).notNull().defaults(to: 0)
                t.column("unitsSkipped", .integer).notNull().defaults(to: 0)
                t.column("unitsFailed", .integer).notNull().defaults(to: 0)
                t.column("message", .text)
            }
            // The last completed execution of each stage: what `status` compares against.
            try db.create(table: "stageState") { t in
                t.primaryKey("stage", .text)
                t.column("fingerprint", .text).notNull()
                t.column("parametersFingerprint", .text).notNull()  // what cached units are keyed by
                t.column("codeVersion", .text).notNull()
                t.column("paramsJSON", .text).notNull()
                t.column("inputsJSON", .text).notNull()         // {upstream stage: output digest}
                t.column("outputDigest", .text).notNull()
                t.column("unitsFailed", .integer).notNull()
                t.column("summary", .text).notNull()
                t.column("runId", .text).notNull().references("run")
                t.column("completedAt", .datetime).notNull()
            }
            try db.create(table: "failure") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("stage", .text).notNull()
                t.column("fingerprint", .text).notNull().defaults(to: "")  // the stage's parameters fingerprint
                t.column("subject", .text).notNull()            // the source path, or what failed
                t.column("sha256", .text).notNull().defaults(to: "")
                t.column("reason", .text).notNull()
                t.column("runId", .text).notNull().references("run")
                t.column("recordedAt", .datetime).notNull()
                t.uniqueKey(["stage", "fingerprint", "subject", "sha256", "reason"], onConflict: .ignore)
            }
            try db.create(table: "artifact") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("stage", .text).notNull()
                t.column("fingerprint", .text).notNull()
                t.column("sourceSHA256", .text).indexed()
                t.column("kind", .text).notNull()
                t.column("path", .text).notNull()
                t.column("sha256", .text)
                t.column("runId", .text).notNull().references("run")
                t.column("createdAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v2: tensor cache index") { db in
            try db.create(table: "cacheShard") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("stage", .text).notNull()
                t.column("fingerprint", .text).notNull()
                t.column("file", .text).notNull().unique()      // relative to the work directory
                t.column("records", .integer).notNull()
                t.column("bytes", .integer).notNull()
                t.column("runId", .text).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "cacheRecord") { t in
                t.column("stage", .text).notNull()
                t.column("fingerprint", .text).notNull()
                t.column("key", .text).notNull()                // the source's SHA-256
                t.column("shardId", .integer).notNull().references("cacheShard", onDelete: .cascade).indexed()
                t.column("dtype", .integer).notNull()
                t.column("shapeJSON", .text).notNull()
                t.column("crc32c", .integer).notNull()
                t.column("metaOffset", .integer).notNull()
                t.column("metaLength", .integer).notNull()
                t.column("dataOffset", .integer).notNull()
                t.column("dataLength", .integer).notNull()
                t.column("metadata", .text).notNull()
                t.column("runId", .text).notNull()
                t.primaryKey(["stage", "fingerprint", "key"])
            }
            try db.create(index: "cacheRecord_key", on: "cacheRecord", columns: ["key"])
        }
        migrator.registerMigration("v3: reproducible runs, scale-out workers") { db in
            try db.alter(table: "run") { t in
                t.add(column: "manifestPath", .text)            // where the manifest's relative paths point from
                t.add(column: "environmentJSON", .text)         // code version, toolchain, libraries, seed, threads
                t.add(column: "paramsJSON", .text)              // {stage: resolved parameters}
                t.add(column: "datasetFingerprint", .text)      // SHA-256 of the sorted source hashes in use
                t.add(column: "sourcesInUse", .integer)
                t.add(column: "worker", .text)                  // "I/N" for a scale-out worker's run
            }
            try db.alter(table: "stageRun") { t in
                t.add(column: "outputDigest", .text)
                t.add(column: "producedByRun", .text)           // for an up-to-date stage: the run that computed it
                t.add(column: "seconds", .double)
            }
        }
        migrator.registerMigration("v4: stage runs name their parameters fingerprint") { db in
            // What `cache gc` keeps: per-source stages key their records by the parameters
            // fingerprint, which the full one (hashed with the inputs) cannot be turned back into.
            try db.alter(table: "stageRun") { t in t.add(column: "parametersFingerprint", .text) }
            // Earlier rows: from the stage's state when it is the same execution, from the records
            // the run computed, and for an up-to-date stage from the run that produced its output.
            try db.execute(sql: """
                UPDATE stageRun SET parametersFingerprint = (SELECT s.parametersFingerprint FROM stageState s
                    WHERE s.stage = stageRun.stage AND s.fingerprint = stageRun.fingerprint)
                WHERE parametersFingerprint IS NULL;
                UPDATE stageRun SET parametersFingerprint = (SELECT c.fingerprint FROM cacheShard c
                    WHERE c.stage = stageRun.stage AND c.runId = stageRun.runId LIMIT 1)
                WHERE parametersFingerprint IS NULL;
                UPDATE stageRun SET parametersFingerprint = (SELECT p.parametersFingerprint FROM stageRun p
                    WHERE p.stage = stageRun.stage AND p.runId = stageRun.producedByRun AND p.fingerprint = stageRun.fingerprint
                      AND p.parametersFingerprint IS NOT NULL LIMIT 1)
                WHERE parametersFingerprint IS NULL;
                """)
        }
        migrator.registerMigration("resources: stage runs record CPU seconds and peak RSS") { db in
            // Rows written before this migration keep NULL: their cost was not measured.
            try db.alter(table: "stageRun") { t in
                t.add(column: "cpuSeconds", .double)            // user + system CPU of the whole process
                t.add(column: "peakRSSMB", .double)             // VmHWM while the stage ran, in MiB
            }
        }
        migrator.registerMigration("sources record the inode and change time they were read at") { db in
            // NULL for rows read before: the next ingest hashes those files once more and records it.
            try db.alter(table: "source") { t in t.add(column: "inodeState", .text) }
        }
        return migrator
    }
}
