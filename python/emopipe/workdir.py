"""An EmoPipe work directory, read-only: the SQLite index's records with their labels, and their tensors."""
import json
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass, field

import numpy as np

from .errors import EmoPipeError
from .layout import Layout
from .shard import DTYPE_NAMES, DTYPES, ShardMaps

# RAVDESS's emotion codes 1-8, as EmoCore's `Emotion` names them.
EMOTION_NAMES = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful", 7: "disgust", 8: "surprised"}
# The label columns of the `source` table, in the names `emopipe cache export` writes them.
LABEL_COLUMNS = ("actor", "emotion", "intensity", "statement", "repetition", "modality", "channel", "clip")


@dataclass(frozen=True)
class Record:
    """One cached record: what the SQLite index says about it and the labels of its source.

    `labels` holds `source` (the first source path with these bytes), `sources` (all of them), the
    RAVDESS codes (actor, emotion, emotion_name, intensity, statement, repetition, modality, channel)
    and `clip`; `metadata` the record's own facts (audio: real_frames, duration_seconds, …).
    """
    stage: str
    cache_key: str
    key: str
    dtype: np.dtype
    shape: tuple
    shard_path: str
    data_offset: int
    crc32c: int
    metadata: dict = field(compare=False)
    labels: dict = field(compare=False)
    # The index's metadata text, compared with the shard's bytes when the tensor is read.
    metadata_text: str = field(compare=False, repr=False, default="")

    @property
    def nbytes(self):
        return self.dtype.itemsize * int(np.prod(self.shape, dtype=object))

    def describe(self):
        """The record's JSON document, as `emopipe cache export` writes it beside the tensor."""
        document = dict(self.metadata)
        document.update(self.labels)
        document.update(sha256=self.key, stage=self.stage, cache_key=self.cache_key,
                        dtype=DTYPE_NAMES[_DTYPE_CODES[self.dtype.str]], shape=list(self.shape))
        return document


_DTYPE_CODES = {dtype.str: code for code, dtype in DTYPES.items()}


def _uri(path, immutable=False):
    return "file:" + urllib.parse.quote(path) + ("?mode=ro&immutable=1" if immutable else "?mode=ro")


def _connect_read_only(path):
    """Read-only, as `emopipe`'s inspecting commands open it. A folder that cannot hold the write-ahead
    log's `-shm` file is read as immutable when no `-wal` holds uncheckpointed commits."""
    try:
        db = sqlite3.connect(_uri(path), uri=True)
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.DatabaseError as error:
        if not isinstance(error, sqlite3.OperationalError):
            raise EmoPipeError(f"{path}: cannot read the provenance database: {error}") from error
        wal = path + "-wal"
        if os.path.exists(wal) and not os.path.isfile(wal):
            raise EmoPipeError(f"{path}: cannot read the provenance database ({error}); its write-ahead log {wal} "
                               f"is not a file (a folder or a device in its place): move it away") from error
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise EmoPipeError(f"{path}: cannot read the provenance database ({error}) and its write-ahead log "
                               f"holds commits; open the work directory once where it is writable") from error
        try:
            db = sqlite3.connect(_uri(path, immutable=True), uri=True)
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error as second:
            raise EmoPipeError(f"{path}: cannot open the provenance database: {second}") from second


class WorkDir:
    """A work directory opened read-only.

        with emopipe.WorkDir("work") as work:
            for record in work.records("audio"):
                x = work.tensor(record)            # read-only view on the mapped shard
                y = record.labels["emotion"]
    """

    def __init__(self, root):
        self.layout = Layout(root)
        path = self.layout.database_path
        if os.path.exists(path) and not os.path.isfile(path):
            raise EmoPipeError(f"{path}: the provenance database is not a regular file (a folder, a pipe or a device)")
        if not os.path.isfile(path):
            raise EmoPipeError(f"{self.layout.root}: no work directory here (no {os.path.basename(path)}; run `emopipe run` first)")
        self._db = _connect_read_only(path)
        try:
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise EmoPipeError(f"{path}: cannot read the provenance database: {error}") from error
        if not {"cacheRecord", "cacheShard", "source"} <= tables:
            self._db.close()
            raise EmoPipeError(f"{path}: no tensor cache index in this database (not EmoPipe's, or made by an older EmoPipe)")
        self._has_stage_state = "stageState" in tables
        self.shards = ShardMaps()

    def _query(self, sql, arguments=()):
        """Rows of a read; a damaged database is named, not left to raise sqlite3's bare error."""
        try:
            return self._db.execute(sql, arguments).fetchall()
        except sqlite3.DatabaseError as error:
            raise EmoPipeError(f"{self.layout.database_path}: cannot read the provenance database: {error}") from error

    @property
    def root(self):
        return self.layout.root

    def close(self):
        """Closes the database. Mapped shards stay valid while arrays viewing them live."""
        self._db.close()
        self.shards = ShardMaps()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Listing

    def stages(self):
        """The stages that hold cached records."""
        return [r[0] for r in self._query("SELECT DISTINCT stage FROM cacheRecord ORDER BY stage")]

    def cache_keys(self, stage):
        """The cache keys `stage` has records under."""
        return [r[0] for r in self._query(
            "SELECT DISTINCT fingerprint FROM cacheRecord WHERE stage = ? ORDER BY fingerprint", (stage,))]

    def current_cache_key(self, stage):
        """The cache key of the stage's last completed run, if any."""
        if not self._has_stage_state:
            return None
        rows = self._query("SELECT parametersFingerprint FROM stageState WHERE stage = ?", (stage,))
        return rows[0][0] if rows else None

    def resolve_cache_key(self, stage, cache_key=None):
        """The full cache key a unique prefix (4 or more hex digits) names; without one, that of the
        stage's last completed run (or the only one cached). The rules of `emopipe cache export`."""
        cached = self.cache_keys(stage)
        if not cached:
            held = self.stages()
            raise EmoPipeError(f"{self.layout.database_path}: no cached {stage!r} records"
                               + (f" (stages with records: {', '.join(held)})" if held else " (the cache is empty)"))
        known = f"cached {stage} cache keys: " + ", ".join(f[:16] for f in cached)
        if cache_key is not None:
            prefix = str(cache_key).lower()
            if len(prefix) < 4 or any(c not in "0123456789abcdef" for c in prefix):
                raise EmoPipeError(f"cache key {cache_key!r} is not 4 or more hex digits ({known})")
            matching = [f for f in cached if f.startswith(prefix)]
            if not matching:
                raise EmoPipeError(f"cache key {cache_key!r} matches no {known}")
            if len(matching) > 1:
                raise EmoPipeError(f"cache key {cache_key!r} is ambiguous: it starts {len(matching)} of the {known}")
            return matching[0]
        current = self.current_cache_key(stage)
        if current in cached:
            return current
        if len(cached) != 1:
            raise EmoPipeError(f"several cache_keys hold {stage} records and no completed run names one: choose one ({known})")
        return cached[0]

    def records(self, stage, cache_key=None):
        """Every record of `stage` under one cache key (see `resolve_cache_key`) whose content a source
        has now, sorted by key: the records `emopipe cache export` writes. (Those of a file changed or
        removed since have no labels; `emopipe cache gc` removes them.)"""
        cache_key = self.resolve_cache_key(stage, cache_key)
        # One statement, so one moment of the database (a run may publish meanwhile); a record whose shard row
        # is missing would drop out of an inner join silently: it is named instead.
        rows = self._query(
            "SELECT r.key, r.dtype, r.shapeJSON, r.crc32c, r.dataOffset, r.metadata, s.file FROM cacheRecord r "
            "LEFT JOIN cacheShard s ON s.id = r.shardId WHERE r.stage = ? AND r.fingerprint = ? ORDER BY r.key",
            (stage, cache_key))
        orphans = sum(1 for row in rows if row[6] is None)
        if orphans:
            raise EmoPipeError(f"{self.layout.database_path}: {orphans} {stage} record(s) name a shard the index "
                               "does not hold (a damaged database): run `emopipe cache verify`")
        labels = self._labels(stage, cache_key)
        records = []
        for key, dtype, shape_json, crc, data_offset, metadata, shard_file in rows:
            _require_column_types(f"{self.layout.database_path}: {stage} record {key!r}",
                                  key=(key, str), dtype=(dtype, int), shape=(shape_json, str), crc32c=(crc, int),
                                  data_offset=(data_offset, int), metadata=(metadata, str), shard_file=(shard_file, str))
            if not (labels.get(key) or {}).get("sources"):
                continue
            if dtype not in DTYPES:
                raise EmoPipeError(f"{self.layout.database_path}: {stage} record {key} has unknown dtype {dtype}")
            where = f"{self.layout.database_path}: {stage} record {key}"
            records.append(Record(stage=stage, cache_key=cache_key, key=key, dtype=DTYPES[dtype],
                                  shape=_shape(shape_json, where), shard_path=self.layout.cache_file(shard_file),
                                  data_offset=data_offset, crc32c=crc, metadata=_json_object(metadata, where), metadata_text=metadata,
                                  labels=labels[key]))
        return records

    def record(self, stage, key, cache_key=None):
        """The record of one source (its SHA-256) in `stage`."""
        for record in self.records(stage, cache_key):
            if record.key == key:
                return record
        raise EmoPipeError(f"no {stage} record for source {key} among those of current files "
                           "(a record of a file removed or changed since is left out, as `emopipe cache export` leaves it)")

    def _labels(self, stage, cache_key):
        """key → labels, from the source rows whose bytes have that SHA-256."""
        columns = ", ".join(LABEL_COLUMNS)
        rows = self._query(
            f"SELECT sha256, path, status, {columns} FROM source WHERE sha256 IN "
            "(SELECT key FROM cacheRecord WHERE stage = ? AND fingerprint = ?) ORDER BY path",
            (stage, cache_key))
        by_key = {}
        for row in rows:
            _require_source_row(self.layout.database_path, row[1:])
            by_key.setdefault(row[0], []).append(row[1:])
        return {key: _labels_of(sources, self.layout.database_path) for key, sources in by_key.items()}

    # Reading

    def tensor(self, record, verify=False):
        """The record's tensor: a read-only NumPy array viewing the memory-mapped shard (no copy).
        `verify` first checks the record's CRC-32C (metadata and tensor bytes)."""
        return read_tensor(self.shards, record, verify)


def read_tensor(shards, record, verify=False):
    shard = shards.get(record.shard_path)
    entry = shard.entry(record.key, record.data_offset)
    if entry.shape != tuple(record.shape) or DTYPES[entry.dtype] != record.dtype or entry.crc32c != record.crc32c:
        raise EmoPipeError(f"{shard.path}: record {record.key} is {DTYPE_NAMES[entry.dtype]} {list(entry.shape)} with "
                           f"CRC-32C {entry.crc32c} in the shard, {record.dtype.name} {list(record.shape)} with "
                           f"{record.crc32c} in the index")
    array = shard.array(entry, verify=verify)   # the CRC first, when asked: damage in the shard is DamagedRecord
    # The index's copy of the metadata is what `records` offers; the shard's is the one its CRC covers. (A
    # Record made without the index's text, by its caller, has none to compare.)
    if record.metadata_text and shard.metadata_bytes(entry) != record.metadata_text.encode("utf-8"):
        raise EmoPipeError(f"{shard.path}: record {record.key} has other metadata in the shard than in the index "
                           "(the database or the shard is damaged): run `emopipe cache verify`")
    return array


def _require_column_types(where, **columns):
    """Each `name=(value, type)` of an index row is of its type: a value an sqlite3 shell or a damaged page
    left as a BLOB (or a number as text) is named, not left to fail deeper as a bare TypeError."""
    kinds = {str: "text", int: "an integer"}
    for name, (value, kind) in columns.items():
        if not isinstance(value, kind) or isinstance(value, bool):
            raise EmoPipeError(f"{where}: its {name} is {type(value).__name__}, not {kinds[kind]} (a damaged or hand-edited "
                               "database): run `emopipe cache verify`")


def _index_json(text, where, field):
    """A JSON column of the index; one that is not JSON means the index is damaged."""
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError) as error:
        # RecursionError: lists nested past Python's recursion limit, which no index EmoPipe writes holds.
        raise EmoPipeError(f"{where}: its {field} is not JSON ({type(error).__name__}: {error})") from error


def _json_object(text, where):
    """A record's metadata as the index holds it: a JSON object."""
    value = _index_json(text, where, "metadata")
    if not isinstance(value, dict):
        raise EmoPipeError(f"{where}: its metadata is not a JSON object")
    return value


def _shape(text, where):
    """A record's shape as the index holds it: a JSON list of non-negative integers."""
    value = _index_json(text, where, "shape")
    # A whole number written with a fraction (`414.0`) is a size, as Swift's JSON decoding reads it.
    def size(n):
        if isinstance(n, float) and n.is_integer():
            return int(n)
        return n if isinstance(n, int) and not isinstance(n, bool) else None
    sizes = [size(n) for n in value] if isinstance(value, list) else None
    if sizes is None or not all(n is not None and n >= 0 for n in sizes):
        raise EmoPipeError(f"{where}: its shape {text!r} is not a list of sizes")
    return tuple(sizes)


# The states a `source` row may be in, as EmoStore's `SourceStatus` names them.
SOURCE_STATUSES = ("ok", "failed", "ignored", "removed")


def _require_source_row(database, row):
    """A `source` row (path, status, label columns) holds what ingest writes: a status it knows, codes that are
    integers (or NULL) and a clip that is text (or NULL). Anything else is a hand-edited or damaged database,
    named rather than passed on as labels."""
    path, status = row[0], row[1]
    where = f"{database}: table source, row {path!r}"
    if not isinstance(path, str):
        raise EmoPipeError(f"{database}: table source: a path is {type(path).__name__}, not text (a damaged or hand-edited database)")
    if status not in SOURCE_STATUSES:
        raise EmoPipeError(f"{where}: its status {status!r} is not one of {', '.join(SOURCE_STATUSES)} (a damaged or hand-edited database)")
    for name, value in zip(LABEL_COLUMNS, row[2:]):
        kind = str if name == "clip" else int
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise EmoPipeError(f"{where}: its {name} is {value!r}, not {'text' if kind is str else 'an integer'} "
                               "(a damaged or hand-edited database)")


def _code_problem(codes):
    """The first RAVDESS code out of range (`emopipe`'s own check of a file name), or None."""
    ranges = [("modality", 1, 3), ("channel", 1, 2), ("emotion", 1, 6 if codes["channel"] == 2 else 8),
              ("intensity", 1, 2), ("statement", 1, 2), ("repetition", 1, 2), ("actor", 1, 24)]
    for name, low, high in ranges:
        if codes[name] is None:
            return f"it has no {name} code"
        if not low <= codes[name] <= high:
            return f"its {name} {codes[name]:02d} is out of range {low:02d}-{high:02d}"
        # Checked where `emopipe` checks it, so that both name the same first problem.
        if name == "intensity" and codes["emotion"] == 1 and codes["intensity"] == 2:
            return "intensity 02 (strong) is not used with emotion 01 (neutral)"
    return None


def _labels_of(sources, database):
    """Labels from the first source by path that is in use (status ok), else the first of any status;
    `sources` lists every in-use path. The rules of `emopipe cache export`, which refuses an ok source's codes
    that ingest would not have recorded."""
    live = [s for s in sources if s[1] == "ok"]
    first = (live or sources or [None])[0]
    if live:
        problem = _code_problem(dict(zip(LABEL_COLUMNS, first[2:])))
        if problem:
            raise EmoPipeError(f"{database}: table source, row {first[0]!r}: {problem}, though its status is ok "
                               "(a hand-edited or damaged database)")
    labels = {"source": first[0] if first else None, "sources": [s[0] for s in live]}
    for i, name in enumerate(LABEL_COLUMNS):
        labels[name] = first[2 + i] if first else None
    labels["emotion_name"] = EMOTION_NAMES.get(labels["emotion"])
    return labels
