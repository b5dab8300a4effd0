"""Shared helpers for oracle scripts: fixed seeds, and the fixture format the TypeScript tests read.

Fixture format: <name>.json holds {"tensors": {key: {"dtype", "shape", "offset", "length"}}, "meta": {...}}
and <name>.bin holds the raw little-endian tensor bytes at those offsets.
"""
import json, os
import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIXTURES = os.path.join(ROOT, 'tests', 'fixtures')


def save_fixture(name, tensors, meta=None):
    """Writes tests/fixtures/<name>.json + .bin. tensors: dict of str -> numpy array (or torch tensor)."""
    path = os.path.join(FIXTURES, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    header, blobs, offset = {}, [], 0
    for key, arr in tensors.items():
        if hasattr(arr, 'detach'):
            arr = arr.detach().cpu().numpy()
        arr = np.ascontiguousarray(arr)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        b = arr.tobytes()
        header[key] = {'dtype': str(arr.dtype), 'shape': list(arr.shape), 'offset': offset, 'length': len(b)}
        blobs.append(b)
        offset += len(b)
    with open(path + '.bin', 'wb') as f:
        for b in blobs:
            f.write(b)
    with open(path + '.json', 'w') as f:
        json.dump({'tensors': header, 'meta': meta or {}}, f, indent=1, sort_keys=True)
