"""A DA Dense fed by two quantizers in a row (per-feature input types, then its learned iq) is bit-exact.

That is how ``student``, ``ae_ref`` and ``vae`` start. hls4ml 1.3's ``fuse_quantizer_into_d_a_layers``
fused both into the kernel with the wrong types for the first and declared its variables twice (the
C-simulation did not compile; with the redeclaration renamed it differed on 38 % of student events):
``l1ad.hls.convert`` builds without that pass. Fails if the pass comes back or the input path drifts.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np

from l1ad.emulation.csim import CSim
from l1ad.hls.convert import DA_FUSION_PASS, keras_predict

fm = runpy.run_path(str(Path(__file__).parent / "fixtures" / "firmware_models.py"))["load"]()


def test_two_input_quantizers_in_a_row_are_bit_exact_in_csim(tmp_path: Path) -> None:
    from hls4ml.model.flow import get_flow

    project = fm.project("distributed_arithmetic", "hetero")
    flow, name = DA_FUSION_PASS
    assert name not in get_flow(flow).optimizers
    code = (project / "firmware" / "nnet_utils" / "nnet_code_gen.h").read_text()
    assert "model_inp_q_" not in code  # no quantizer fused into the kernel
    model = fm.keras_model("hetero")
    # both quantizers are heterogeneous (per feature): the case the pass got wrong
    iq = model.get_layer("input_quantizer").quantizer
    assert len({int(v) for v in np.ravel(iq._f)}) > 1
    x = fm.inputs(4000, seed=11, n_overflow=400)  # beyond every input type: saturation on purpose
    y_fw = CSim([project], build_dir=tmp_path / "csim").predict(x, 0)
    y_k = keras_predict(model, x)
    np.testing.assert_array_equal(y_fw, y_k)
    assert len(np.unique(y_k)) > 500  # a real comparison, not a constant
