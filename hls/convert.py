"""The hls4ml call: Keras QAT model -> hls4ml 1.3 ``ModelGraph`` for one firmware target.

:func:`convert` uses ``hls4ml.converters.convert_from_keras_model`` (io_parallel, the target's
strategy, a per-layer ``config_from_keras_model(granularity='name')`` config). Every layer is
written with its C-simulation trace hook (``nnet::save_layer_output`` inside ``#ifndef __SYNTHESIS__``,
inert in synthesis and unless enabled), so the emulator can name the first layer that differs from
Keras without regenerating the project. Writing the project is :mod:`l1ad.hls.build`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from l1ad.hls.target import FirmwareTarget

#: hls4ml 1.3's pass that fuses a heterogeneous quantizer into the DA kernel after it. Fusing two in a
#: row (the fixed hardware input type, then the first Dense's learned input quantizer: the models whose
#: input quantizer has one consumer, ``ae_ref``, ``vae``, ``student``) writes the first one with the
#: kernel's input types instead of its own (``ap_ufixed<11,5>`` for a ``ufixed<12,5>`` pT) and declares
#: its variables twice: C-simulation then differs from the QAT model on 38 % of events (measured on the
#: student). Without the pass each quantizer stays its own layer, bit-exact, and the DA kernel itself
#: (hence the da4ml Verilog and its Yosys cost) is unchanged.
DA_FUSION_PASS = ("vivado:optimize", "vivado:fuse_quantizer_into_d_a_layers")


def _without_da_quantizer_fusion() -> None:
    from hls4ml.model.flow import get_flow, update_flow

    flow, name = DA_FUSION_PASS
    if name in get_flow(flow).optimizers:
        update_flow(flow, remove_optimizers=[name])


def make_hls_config(model: Any, target: FirmwareTarget) -> dict[str, Any]:
    """Per-layer hls4ml config: the target's strategy and reuse factor, every layer traceable."""
    import hls4ml

    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=target.backend)
    config["Model"]["Strategy"] = target.strategy
    config["Model"]["ReuseFactor"] = target.reuse_factor
    for layer in config.get("LayerName", {}).values():
        layer["Trace"] = True
        if "ReuseFactor" in layer:
            layer["ReuseFactor"] = target.reuse_factor
    return config


def convert(
    model: Any,
    target: FirmwareTarget,
    output_dir: str | Path,
    input_data_tb: str | None = None,
    output_data_tb: str | None = None,
) -> Any:
    """hls4ml ``ModelGraph`` of ``model`` for ``target`` (not yet written)."""
    import hls4ml

    _without_da_quantizer_fusion()
    hls_model = hls4ml.converters.convert_from_keras_model(
        model,
        output_dir=str(output_dir),
        project_name=target.project_name,
        input_data_tb=input_data_tb,
        output_data_tb=output_data_tb,
        backend=target.backend,
        hls_config=make_hls_config(model, target),
        io_type=target.io_type,
        part=target.part,
        clock_period=target.clock_period_ns,
        namespace=target.namespace,
        write_weights_txt=False,
        write_tar=False,
    )
    hls_model.config.trace_output = True
    return hls_model


def keras_predict(model: Any, x: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """Keras scores as float64, shape (N, n_out)."""
    y = model.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size, verbose=0)
    return np.asarray(y, dtype=np.float64).reshape(len(x), -1)
