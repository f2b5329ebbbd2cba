"""Oracle checks of the Python cache reader (python/emopipe) and of `emopipe cache export`, for the test suite.

    check_python_reader.py reader WORKDIR NPY_DIR   # every record against NPY_DIR/<stage>-<key>.npy (from `cache get --npy`)
    check_python_reader.py tar WORKDIR STAGE DIR    # an exported WebDataset folder, read with tarfile and numpy
    check_python_reader.py npz WORKDIR STAGE DIR    # an exported npz folder, read with numpy.load
    check_python_reader.py damaged WORKDIR STAGE KEY  # that record's CRC check fails, others pass
    check_python_reader.py torch WORKDIR STAGE      # the PyTorch Dataset through a 2-worker DataLoader (needs torch)

Prints one JSON object: what was checked and every disagreement found (an empty `problems` list is a pass).
"""
import glob
import io
import json
import os
import sys
import tarfile
import zipfile

import numpy as np

import emopipe


def base_object(array):
    """The object at the end of an array's `base` chain (the mapping, for a zero-copy view)."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array.obj if isinstance(array, memoryview) else array


def check_reader(workdir, npy_dir):
    problems, counts, zero_copy = [], {}, True
    with emopipe.WorkDir(workdir) as work:
        for stage in work.stages():
            for record in work.records(stage):
                array = work.tensor(record, verify=True)
                expected = np.load(os.path.join(npy_dir, f"{stage}-{record.key}.npy"))
                if array.dtype != expected.dtype or array.shape != expected.shape or array.tobytes() != expected.tobytes():
                    problems.append(f"{stage} {record.key}: {array.dtype}{array.shape} differs from cache get's "
                                    f"{expected.dtype}{expected.shape}")
                # A view on the mapping: read-only, owning nothing, based on the mmap object.
                zero_copy &= (not array.flags.writeable and not array.flags.owndata
                              and type(base_object(array)).__name__ == "mmap")
                counts[stage] = counts.get(stage, 0) + 1
    # Without torch the package still imports; the adapter says what it needs.
    try:
        emopipe.CacheDataset
        adapter = "available"
    except ImportError as error:
        adapter = f"ImportError: {error}"
    return {"records": counts, "zero_copy": zero_copy, "torch_adapter": adapter, "problems": problems}


def reader_documents(workdir, stage):
    with emopipe.WorkDir(workdir) as work:
        return {r.key: (work.tensor(r).copy(), r.describe()) for r in work.records(stage)}


def check_tar(workdir, stage, folder):
    expected = reader_documents(workdir, stage)
    problems, seen, files = [], {}, sorted(glob.glob(os.path.join(folder, "*.tar")))
    for path in files:
        with tarfile.open(path) as archive:
            members = archive.getmembers()
            if archive.format != tarfile.USTAR_FORMAT and any(m.pax_headers for m in members):
                problems.append(f"{path}: not plain ustar")
            previous_key = None
            for member in members:
                # WebDataset's rule: the key is the name up to the first dot, the rest the field.
                key, _, field = member.name.partition(".")
                if key != previous_key and key in seen:
                    problems.append(f"{path}: members of {key} are not adjacent")
                previous_key = key
                data = archive.extractfile(member).read()
                entry = seen.setdefault(key, {})
                if field == "npy":
                    entry["npy"] = np.load(io.BytesIO(data))
                elif field == "json":
                    entry["json"] = json.loads(data)
                else:
                    problems.append(f"{path}: unexpected member {member.name}")
    for key, (array, document) in expected.items():
        got = seen.get(key, {})
        if "npy" not in got or got["npy"].tobytes() != array.tobytes() or got["npy"].shape != array.shape:
            problems.append(f"{key}: tensor missing or different")
        if got.get("json") != document:
            problems.append(f"{key}: json {got.get('json')} differs from the reader's {document}")
    problems += [f"{key}: exported but not in the cache" for key in seen.keys() - expected.keys()]
    return {"files": [os.path.basename(f) for f in files], "records": len(seen), "problems": problems}


def check_npz(workdir, stage, folder):
    expected = reader_documents(workdir, stage)
    problems, seen, files = [], set(), sorted(glob.glob(os.path.join(folder, "*.npz")))
    for path in files:
        with zipfile.ZipFile(path) as archive:
            # numpy.load does not check the zip's CRC-32s; zipfile does.
            if archive.testzip() is not None or any(i.compress_type != zipfile.ZIP_STORED for i in archive.infolist()):
                problems.append(f"{path}: a bad CRC-32 or a compressed entry")
        with np.load(path) as npz:
            labels = json.loads(npz["labels.json"])
            for name in npz.files:
                if name == "labels.json":
                    continue
                seen.add(name)
                array, document = expected.get(name, (None, None))
                if array is None or npz[name].tobytes() != array.tobytes() or npz[name].shape != array.shape:
                    problems.append(f"{path}: {name} missing from the cache or different")
                if labels.get(name) != document:
                    problems.append(f"{path}: labels of {name} differ from the reader's")
    problems += [f"{key}: not exported" for key in expected.keys() - seen]
    return {"files": [os.path.basename(f) for f in files], "records": len(seen), "problems": problems}


def check_damaged(workdir, stage, damaged_key):
    problems, failed = [], []
    with emopipe.WorkDir(workdir) as work:
        for record in work.records(stage):
            try:
                work.tensor(record, verify=True)
            except emopipe.DamagedRecord as error:
                failed.append(record.key)
                if record.key not in str(error) or record.shard_path not in str(error):
                    problems.append(f"the error does not name the record and shard: {error}")
            work.tensor(record, verify=False)  # unchecked reads still work
    if failed != [damaged_key]:
        problems.append(f"CRC failures {failed}, expected only {damaged_key}")
    return {"failed": failed, "problems": problems}


def unstacked(items):
    """A batch as (list of tensors, list of targets): records of different lengths do not stack."""
    return [tensor for tensor, _ in items], [target for _, target in items]


def check_torch(workdir, stage):
    import torch
    problems = []
    expected = reader_documents(workdir, stage)
    data = emopipe.CacheDataset(workdir, stage, target="emotion", verify=True)
    tensor, _ = data[0]
    # Zero copy: the sample's memory is the mapped record the Dataset's own shard maps hand out.
    view = emopipe.workdir.read_tensor(data._shards, data.records[0])
    if type(base_object(view)).__name__ != "mmap" or tensor.data_ptr() != view.__array_interface__["data"][0]:
        problems.append("the Dataset's tensor is not a view on the mapped shard")
    # Audio records differ in length (every frame is cached): batches are lists, not stacked tensors.
    loader = torch.utils.data.DataLoader(data, batch_size=3, shuffle=False, num_workers=2, collate_fn=unstacked, timeout=120)
    keys = sorted(expected)
    index = 0
    for batch, targets in loader:
        for tensor, target in zip(batch, targets):
            array, document = expected[keys[index]]
            if tensor.numpy().tobytes() != array.tobytes() or int(target) != document["emotion"]:
                problems.append(f"{keys[index]}: the DataLoader's sample differs from the reader's")
            index += 1
    if index != len(keys):
        problems.append(f"the DataLoader gave {index} samples for {len(keys)} records")
    return {"samples": index, "problems": problems}


def main(argv):
    mode, args = argv[1], argv[2:]
    checks = {"reader": check_reader, "tar": check_tar, "npz": check_npz, "damaged": check_damaged, "torch": check_torch}
    print(json.dumps(checks[mode](*args)))


if __name__ == "__main__":
    main(sys.argv)
