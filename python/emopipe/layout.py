"""The work directory's layout, mirrored from EmoStore's `Workspace` (Sources/EmoStore/Workspace.swift).

Every path this package opens inside a work directory is spelled here and only here:

    emopipe.sqlite                    provenance database; tables `cacheShard`, `cacheRecord`, `source`
    cache/<stage>/<fp16>/*.shard      immutable tensor shards of one (stage, cache key)

The shard index (`cacheShard.file`) records shard paths relative to the work directory.
"""
import os

from .errors import EmoPipeError

DATABASE_NAME = "emopipe.sqlite"
CACHE_FOLDER_NAME = "cache"


class Layout:
    """Paths inside one work directory."""

    def __init__(self, root):
        self.root = os.path.abspath(os.fspath(root))

    def path(self, relative):
        """A path inside the work directory from one relative to it (as the shard index records them)."""
        return os.path.join(self.root, relative)

    def cache_file(self, relative):
        """A cache file named by a database row: only a relative path inside cache/ without "." or ".."
        parts, as `emopipe` accepts, so a damaged row cannot make the reader open a file elsewhere."""
        parts = relative.split("/")
        if len(parts) < 2 or parts[0] != "cache" or any(p in ("", ".", "..") for p in parts):
            raise EmoPipeError(f"{self.database_path}: a cache row names {relative!r}, which is not a file inside cache/; refused")
        return self.path(relative)

    @property
    def database_path(self):
        return self.path(DATABASE_NAME)

    @property
    def cache_root(self):
        return self.path(CACHE_FOLDER_NAME)

    def relative_cache_folder(self, stage, cache_key):
        """The shard folder of one stage and cache key, relative to the work directory."""
        return f"{CACHE_FOLDER_NAME}/{stage}/{cache_key[:16]}"
