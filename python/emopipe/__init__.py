"""Read an EmoPipe work directory's tensor cache from Python, without copying.

    import emopipe
    with emopipe.WorkDir("work") as work:
        records = work.records("audio")            # sorted by key, with labels
        x = work.tensor(records[0], verify=True)   # numpy view on the memory-mapped shard

`emopipe.CacheDataset` (PyTorch) is imported on first use, so this package imports without torch.
"""
from .crc32c import crc32c
from .errors import DamagedRecord, EmoPipeError, ShardError
from .layout import Layout
from .shard import Shard
from .workdir import EMOTION_NAMES, Record, WorkDir

__version__ = "0.1.0"
__all__ = ["WorkDir", "Record", "Shard", "Layout", "crc32c", "EmoPipeError", "ShardError", "DamagedRecord",
           "EMOTION_NAMES", "open_workdir"]  # and CacheDataset, with torch


def open_workdir(root):
    """Opens a work directory read-only (same as `WorkDir(root)`)."""
    return WorkDir(root)


def __getattr__(name):
    if name == "CacheDataset":
        from .torchdata import CacheDataset
        return CacheDataset
    raise AttributeError(f"module 'emopipe' has no attribute {name!r}")
