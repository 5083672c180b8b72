"""The per-epoch record of a training run, shared by :func:`blconv.train.fit` and its callbacks."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch records of a :func:`~blconv.train.fit` run (entry ``i`` is epoch ``i + 1``).

    Attributes
    ----------
    loss, accuracy : list of float
        Mean training loss and training accuracy (in [0, 1]) over the epoch's
        batches, measured in training mode as the weights changed.
    val_loss, val_accuracy : list of (float or None)
        :func:`~blconv.train.evaluate` on the validation set after the epoch
        (``None`` without one).
    lr : list of float
        The learning rate used during the epoch.
    epoch_seconds : list of float
        Wall time of the epoch (training and validation).
    effective_rate : list of list of float
        Per conv layer (:func:`blconv.models.conv_layers` order), the
        ``effective_rate`` of the band of the epoch's last training batch.

    Examples
    --------
    >>> from blconv.train import History
    >>> h = History(loss=[0.7], accuracy=[0.5], val_loss=[None], val_accuracy=[None],
    ...             lr=[0.1], epoch_seconds=[0.2], effective_rate=[[0.0]])
    >>> History.from_dict(h.to_dict()) == h, len(h)
    (True, 1)
    >>> h.row(0)["loss"], list(h.row(0)) == History.names()
    (0.7, True)
    """
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    effective_rate: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.loss)

    @classmethod
    def names(cls) -> list:
        """The field names, in order: the keys of every row."""
        return [f.name for f in fields(cls)]

    def row(self, i: int) -> dict:
        """Epoch ``i + 1`` as a dict ``{field name: value}`` (a copy), as callbacks receive it."""
        return {name: _copy(getattr(self, name)[i]) for name in self.names()}

    def append(self, row: dict) -> None:
        """Add one epoch: ``row`` must have exactly the field names as keys.

        Raises
        ------
        ValueError
            When the keys differ from the fields.
        """
        if not isinstance(row, dict) or set(row) != set(self.names()):
            got = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise ValueError(f"History.append: row keys must be {sorted(self.names())}, "
                             f"got {got}")
        for name in self.names():
            getattr(self, name).append(_copy(row[name]))

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of lists (copies)."""
        return {name: [_copy(v) for v in getattr(self, name)] for name in self.names()}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            When the keys differ from the fields.
        """
        names = set(cls.names())
        if not isinstance(d, dict) or set(d) != names:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"History.from_dict: keys must be {sorted(names)}, got {got}")
        return cls(**{k: list(v) for k, v in d.items()})


def _copy(v):
    return list(v) if isinstance(v, list) else v
