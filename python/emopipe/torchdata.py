"""A `torch.utils.data.Dataset` over one stage's cached records (needs PyTorch; the rest of the package does not)."""
import warnings

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("emopipe.CacheDataset needs PyTorch (pip install torch); "
                      "the rest of emopipe works without it") from error

from .shard import ShardMaps
from .workdir import WorkDir, read_tensor


class CacheDataset(Dataset):
    """(tensor, target) pairs of one stage's records, in key order.

        data = emopipe.CacheDataset("work", "audio", target="emotion")
        loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True, num_workers=2,
                                             collate_fn=lambda items: tuple(map(list, zip(*items))))

    Audio records hold every frame of their clip and so differ in length: the default collation
    cannot stack them; batch them as lists (above) or crop/pad them with a `transform`.

    The tensor shares memory with the mapped shard (read-only: a DataLoader's batching copies it;
    copy before changing it in place). `target` names a label (`emotion`, `actor`, …) or is a
    function of the `Record`; `transform` is applied to the tensor. Picklable, so DataLoader workers
    map the shards themselves.
    """

    def __init__(self, workdir, stage, cache_key=None, target="emotion", transform=None, verify=False):
        owned = not isinstance(workdir, WorkDir)
        work = WorkDir(workdir) if owned else workdir
        try:
            self.records = work.records(stage, cache_key)
        finally:
            if owned:
                work.close()
        self.target = target
        self.transform = transform
        self.verify = verify
        self._shards = ShardMaps()

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        record = self.records[index]
        array = read_tensor(self._shards, record, self.verify)
        with warnings.catch_warnings():
            # The view is read-only by design (a mapped file opened for reading); PyTorch warns about that.
            warnings.simplefilter("ignore", UserWarning)
            tensor = torch.from_numpy(array)
        if self.transform is not None:
            tensor = self.transform(tensor)
        target = self.target(record) if callable(self.target) else record.labels[self.target]
        return tensor, target
