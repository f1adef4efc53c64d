"""Splitting one export into parts: by UTC day, by symbol, or by a number of rows.

Every part is the same request narrowed to a slice of it: a time range (``day``,
``rows:N``) or one symbol (``symbol``). The slices do not overlap and together cover the
request, so the parts' rows are the whole export's rows. Time slices are half-open
``[start, end)`` and follow the export's order (time, then key), so for them the parts
laid end to end are the whole export in its order. Empty slices get no part (an export
with no rows at all gets one empty part).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import RequestError
from ..export.formats import get_format
from ..export.pipeline import default_file_name
from ..request import ExportRequest, Filter
from ..store import Store

DAY_NS = 86_400 * 1_000_000_000
# More parts than this is a mistake (use a coarser split).
MAX_PARTS = 10_000
# Codecs whose streams may be laid end to end (gzip members, zstd and lz4 frames).
CONCAT_CODECS = ("none", "gzip", "zstd", "lz4")
# Formats whose payloads may be laid end to end: no header, no footer.
CONCAT_FORMATS = ("jsonl",)
SPLIT_KINDS = "day, symbol or rows:N (N >= 1)"
_ROWS = re.compile(r"^rows:(\d+)$")


@dataclass(frozen=True)
class SplitSpec:
    """How an export is split, and whether its parts are also joined into one file."""

    by: str  # "day", "symbol" or "rows"
    rows: int | None = None
    concat: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "rows": self.rows, "concat": self.concat}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitSpec:
        rows = data.get("rows")
        return cls(str(data["by"]), int(rows) if rows is not None else None,
                   bool(data.get("concat")))  # fmt: skip

    @property
    def text(self) -> str:
        return f"rows:{self.rows}" if self.by == "rows" else self.by


@dataclass(frozen=True)
class PartPlan:
    """One part: its number (from 1), its request and the rows the store holds for it."""

    number: int
    request: ExportRequest
    rows: int
    label: str


def parse_split(text: str, *, concat: bool = False) -> SplitSpec:
    """``day``, ``symbol`` or ``rows:N`` -> SplitSpec, or a RequestError naming the forms."""
    value = text.strip().lower()
    if value in ("day", "symbol"):
        return SplitSpec(value, None, concat)
    match = _ROWS.match(value)
    if match and int(match[1]) >= 1:
        return SplitSpec("rows", int(match[1]), concat)
    raise RequestError(f"invalid split {text!r} (expected {SPLIT_KINDS})", split=text)


def check_split(request: ExportRequest, split: SplitSpec) -> None:
    """Refuse split exports this version cannot make, naming what would work."""
    if request.destination:
        raise RequestError(
            "a split export cannot be delivered to a destination (its parts are separate "
            "files); export it whole, or deliver the parts' directory yourself",
            destination=request.destination,
        )
    if not split.concat:
        return
    problems = []
    if split.by == "symbol":
        problems.append("split by day or rows:N (symbol parts are not in time order)")
    if request.format not in CONCAT_FORMATS:
        problems.append(f"format {', '.join(CONCAT_FORMATS)} (not {request.format})")
    if request.compression not in CONCAT_CODECS:
        problems.append(f"compression {', '.join(CONCAT_CODECS)} (not {request.compression})")
    if request.encryption is not None:
        problems.append("no encryption")
    if problems:
        raise RequestError(
            "parts can be joined into one file only with " + "; ".join(problems),
            split=split.text,
        )


def base_file_name(
    request: ExportRequest, first_ns: int | None, last_ns: int | None
) -> tuple[str, str]:
    """(stem, extension) of the whole export's file name; parts insert ``_partNNNN``."""
    name = default_file_name(request, first_ns, last_ns)
    extension = get_format(request.format).extension
    cut = name.rfind(extension)
    stem = name[:cut] if cut > 0 else name
    return stem, name[len(stem) :]


def plan_parts(
    request: ExportRequest, split: SplitSpec, store: Store, batch_rows: int
) -> list[PartPlan]:
    """The parts of ``request``, counted in the store; slices without rows are left out."""
    spec = request.spec
    stats = store.stats(spec, request.filters())
    if stats.rows == 0:
        return [PartPlan(1, request, 0, "all (no rows)")]
    if split.by == "symbol":
        scope = [Filter("exchange", "in", request.exchanges)] if request.exchanges else []
        symbols = list(request.symbols) or store.distinct_values(spec, "symbol", scope)
        slices = [(replace(request, symbols=(symbol,)), symbol) for symbol in symbols]
    else:
        assert stats.first_ns is not None and stats.last_ns is not None
        if split.by == "day":
            bounds = _day_bounds(stats.first_ns, stats.last_ns)
        else:
            bounds = _row_bounds(request, store, split.rows or 1, batch_rows)
        slices = _time_slices(request, bounds)
    if len(slices) > MAX_PARTS:
        raise RequestError(
            f"split {split.text} gives {len(slices)} parts (at most {MAX_PARTS}); "
            "choose a coarser split",
            split=split.text,
        )
    plans: list[PartPlan] = []
    for part_request, label in slices:
        rows = store.stats(spec, part_request.filters()).rows
        if rows:
            plans.append(PartPlan(len(plans) + 1, part_request, rows, label))
    return plans


def _day_bounds(first_ns: int, last_ns: int) -> list[int]:
    """UTC midnights strictly inside the data's time span."""
    day = (first_ns // DAY_NS + 1) * DAY_NS
    bounds = []
    while day <= last_ns:
        bounds.append(day)
        day += DAY_NS
    return bounds


def _row_bounds(request: ExportRequest, store: Store, rows: int, batch_rows: int) -> list[int]:
    """Times at which a new part begins, about every ``rows`` rows (in export order).

    Rows sharing a time stay in one part, so a part can hold more than ``rows`` rows.
    """
    spec = request.spec
    reader = store.scan(spec, request.filters(), [spec.time_column], batch_rows)
    bounds: list[int] = []
    first: int | None = None
    seen = 0
    next_cut = rows
    try:
        for batch in reader:
            column = batch.column(0)
            unit_ns = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[column.type.unit]
            times = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False) * unit_ns
            if first is None and len(times):
                first = int(times[0])
            while next_cut < seen + len(times):
                cut = int(times[next_cut - seen])
                if first is not None and cut > (bounds[-1] if bounds else first):
                    bounds.append(cut)
                next_cut += rows
            seen += len(times)
    finally:
        reader.close()
    return bounds


def _time_slices(request: ExportRequest, bounds: list[int]) -> list[tuple[ExportRequest, str]]:
    """The request cut at ``bounds`` into consecutive half-open time ranges."""
    inside = [
        bound
        for bound in bounds
        if (request.start_ns is None or bound > request.start_ns)
        and (request.end_ns is None or bound < request.end_ns)
    ]
    edges: list[int | None] = [request.start_ns, *inside, request.end_ns]
    slices = []
    for start, end in zip(edges, edges[1:], strict=False):
        label = f"[{_iso(start)}, {_iso(end)})"
        slices.append((replace(request, start_ns=start, end_ns=end), label))
    return slices


def _iso(ns: int | None) -> str:
    from ..timeparse import ns_to_iso

    return "..." if ns is None else ns_to_iso(ns)
