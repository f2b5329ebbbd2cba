"""The package's errors; each names the file and what is wrong."""


class EmoPipeError(Exception):
    """Anything this package refuses: a missing work directory, an unknown stage or cache_key, a bad shard."""


class ShardError(EmoPipeError):
    def __init__(self, path, reason):
        super().__init__(f"{path}: not a valid shard: {reason}")
        self.path, self.reason = path, reason


class DamagedRecord(EmoPipeError):
    def __init__(self, path, key):
        super().__init__(f"{path}: record for source {key} fails its CRC-32C check")
        self.path, self.key = path, key
