"""Request payloads -> validated (N, 19, 4) particle arrays, with errors that name event and feature.

Accepted event layouts (what ``/api/v1/score`` and the OIP ``events`` tensor carry):

* ``[N, 57]``: ``[pT, eta, phi]`` of the 19 slots in input order (``schema.flat_feature_names()``);
* ``[N, 19, 3]``: the same as one ``[pT, eta, phi]`` triple per slot.

An object is present when its pT is non-zero; the class column is the slot's (MET always present).
Every event then passes the same validation as event files (:mod:`l1ad.events.validate`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from l1ad.events import schema
from l1ad.events.sources import kinematics_to_particles
from l1ad.events.validate import first_problems

#: The default largest number of events in one request.
MAX_EVENTS = 65536


class InputError(ValueError):
    """Bad input: the service answers it with a 4xx status and this message."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def _feature(j: int) -> str:
    return schema.flat_feature_names()[j]


def check_values(x: np.ndarray) -> None:
    """Reject NaN/inf, naming the first offending event and feature."""
    bad = ~np.isfinite(x.reshape(len(x), -1))
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"event {i}, feature {j} ({_feature(j)}): value {x.reshape(len(x), -1)[i, j]} is not finite"
        )


def to_particles(x: np.ndarray) -> np.ndarray:
    """(N, 57) or (N, 19, 3) kinematics -> validated (N, 19, 4) float32 particles."""
    if x.ndim == 3 and x.shape[1:] == (schema.N_OBJECTS, 3):
        x = x.reshape(len(x), schema.N_INPUTS)
    if x.ndim != 2 or x.shape[1] != schema.N_INPUTS:
        raise InputError(
            f"events must have shape [N, {schema.N_INPUTS}] or [N, {schema.N_OBJECTS}, 3], got {list(x.shape)}"
        )
    check_values(x)
    p = kinematics_to_particles(x)
    problems = first_problems(p, limit=1)
    if problems:
        pr = problems[0]
        names = {r: i for i, r in enumerate(("pt", "eta", "phi"))}
        col = {"negative_pt": "pt", "eta_acceptance": "eta", "phi_range": "phi"}.get(pr.rule)
        where = f"feature {3 * pr.slot + names[col]} ({_feature(3 * pr.slot + names[col])})" if col else \
            f"slot {pr.slot} ({schema.slot_names()[pr.slot]})"  # fmt: skip
        raise InputError(f"event {pr.row}, {where}: {pr.message}")
    return p


def events_from_json(events: Any, max_events: int = MAX_EVENTS, strict: bool = False) -> np.ndarray:
    """The ``events`` field of a REST request -> particles (see the module docstring).

    ``strict`` checks every value's JSON type (booleans are no numbers, though numpy would take
    them); the caller asks for it when the body holds a ``true``/``false`` token.
    """
    if not isinstance(events, list):
        raise InputError(f"'events' must be a list of events, got {type(events).__name__}")
    if not events:
        raise InputError("'events' is empty: send at least one event")
    if len(events) > max_events:
        raise InputError(f"{len(events)} events in one request; the limit is {max_events}", status=413)
    try:
        x = np.asarray(events)  # dtype inferred: strings, objects and bools do not pass as numbers
    except (ValueError, TypeError, OverflowError):
        x = None
    n_in, n_obj = schema.N_INPUTS, schema.N_OBJECTS
    ok = x is not None and x.dtype.kind in "fiu"
    ok = ok and ((x.ndim == 2 and x.shape[1] == n_in) or (x.ndim == 3 and x.shape[1:] == (n_obj, 3)))
    if not ok or strict:
        message = _first_bad_event(events)
        if message is not None:
            raise InputError(message)
        if not ok:
            raise InputError("events are not a rectangular array of numbers")
    return to_particles(x.astype(np.float64))


def _first_bad_event(events: list) -> str | None:
    """Why ``events`` is not a numeric array: the first event with a wrong length or a non-number
    (None when every event is a list of 57 finite numbers)."""
    for i, ev in enumerate(events):
        flat = ev
        if isinstance(ev, list) and ev and all(isinstance(o, list) for o in ev):
            if len(ev) != schema.N_OBJECTS:
                return f"event {i}: {len(ev)} objects, expected {schema.N_OBJECTS} [pT, eta, phi] triples"
            for s, o in enumerate(ev):
                if len(o) != 3:
                    return f"event {i}, slot {s}: {len(o)} values, expected [pT, eta, phi]"
            flat = [v for o in ev for v in o]
        if not isinstance(flat, list):
            return f"event {i}: expected a list of {schema.N_INPUTS} numbers, got {type(ev).__name__}"
        if len(flat) != schema.N_INPUTS:
            return f"event {i}: {len(flat)} features, expected {schema.N_INPUTS}"
        for j, v in enumerate(flat):
            if isinstance(v, bool) or not isinstance(v, int | float):
                return f"event {i}, feature {j} ({_feature(j)}): {v!r} is not a number"
            try:
                finite = math.isfinite(float(v))
            except OverflowError:
                finite = False
            if not finite:
                return f"event {i}, feature {j} ({_feature(j)}): value {v} is not finite"
    return None


#: OIP tensor datatypes accepted for the events tensor.
OIP_FLOAT_TYPES = {"FP32": np.float32, "FP64": np.float64}


def events_from_tensor(
    shape: list[int], datatype: str, data: Any, max_events: int = MAX_EVENTS
) -> np.ndarray:
    """An OIP input tensor (shape, datatype, flat/nested data or raw bytes) -> particles."""
    if not isinstance(datatype, str) or datatype not in OIP_FLOAT_TYPES:
        raise InputError(
            f"input datatype {datatype!r} not supported; use one of {sorted(OIP_FLOAT_TYPES)}", 400
        )
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InputError(f"input shape must be a list of non-negative integers, got {shape!r}", 400)
    n = shape[0] if shape else 0
    if n == 0:
        raise InputError("the input tensor holds no events", 400)
    if n > max_events:
        raise InputError(f"{n} events in one request; the limit is {max_events}", 413)
    count = int(np.prod(shape))
    if isinstance(data, bytes | bytearray | memoryview):
        dt = np.dtype(OIP_FLOAT_TYPES[datatype]).newbyteorder("<")
        if len(data) != count * dt.itemsize:
            raise InputError(
                f"binary input holds {len(data)} bytes; shape {shape} of {datatype} needs {count * dt.itemsize}",
                400,
            )
        x = np.frombuffer(data, dtype=dt).astype(np.float64)
    else:
        try:
            x = np.asarray(data)
        except (ValueError, TypeError, OverflowError):
            raise InputError("input data must be a (nested) list of numbers", 400) from None
        if x.dtype.kind not in "fiu":
            raise InputError(f"input data must be numbers (datatype {datatype}), got {x.dtype} values", 400)
        x = x.astype(np.float64).ravel()
        if x.size != count:
            raise InputError(f"input data holds {x.size} values; shape {shape} needs {count}", 400)
    try:
        return to_particles(x.reshape(shape))
    except InputError as exc:  # the OIP answers every malformed tensor with 400
        raise InputError(str(exc), 400) from None
