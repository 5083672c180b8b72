"""A least-recently-used cache bounded by the bytes of its values (thread-safe): the DFT
matrices of :mod:`blconv.spectral` and the CUDA graphs of :mod:`blconv._graphs`."""
from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["ByteCache"]


class ByteCache:
    """Values by key, the least recently used dropped first once their bytes pass
    ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.nbytes = max_bytes, 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key, value, nbytes: int) -> bool:
        """Keep ``value`` (replacing ``key``'s), unless it alone passes the bound: then
        nothing changes and the answer is False."""
        with self._lock:
            if nbytes > self.max_bytes:
                return False
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= old[1]
            while self._items and self.nbytes + nbytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self.nbytes -= dropped
            self._items[key] = (value, nbytes)
            self.nbytes += nbytes
            return True

    def values(self) -> list:
        with self._lock:
            return [v for v, _ in self._items.values()]

    def clear(self):
        with self._lock:
            self._items.clear()
            self.nbytes = 0

    def __len__(self):
        return len(self._items)
