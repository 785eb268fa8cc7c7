"""Hardware input encoding (exact grid, saturation) and the float standardization."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_particles

from l1ad.events import encoding, schema


def test_encoded_inputs_lie_on_the_firmware_input_types(particles):
    x = encoding.encode(particles)
    assert x.shape == (len(particles), 57) and x.dtype == np.float32
    for j, t in enumerate(encoding.INPUT_TYPES):
        assert t.representable(x[:, j]).all(), schema.flat_feature_names()[j]
        # quantizing again with the input type is the identity (the model's input quantizer)
        np.testing.assert_array_equal(t.quantize(x[:, j]), x[:, j])


def test_encoding_is_integer_scale_and_shift(particles):
    hw = encoding.encode_hw(particles)
    x = encoding.encode(particles)
    shifts = np.array([s.shift for _ in range(19) for s in encoding.SCALES])
    np.testing.assert_array_equal(x, (hw * 2.0**-shifts).astype(np.float32))
    phys = encoding.decode(x)
    err = np.abs(phys - particles[:, :, :3])
    lsbs = np.array([s.lsb for s in encoding.SCALES])
    assert (err <= lsbs / 2 + 1e-6).all()
    # padded slots encode to exactly zero
    assert (x.reshape(-1, 19, 3)[~schema.present(particles)] == 0).all()


def test_out_of_range_inputs_saturate():
    p = make_particles(3, seed=0)
    p[0, 9] = [5000.0, 10.0, 7.0, 4]  # beyond every range on purpose
    p[1, 9] = [1.0, -10.0, -7.0, 4]
    x = encoding.encode(p).reshape(3, 19, 3)
    pt_t, eta_t, phi_t = (s.input_type for s in encoding.SCALES)
    assert x[0, 9].tolist() == [pt_t.max, eta_t.max, phi_t.max]
    assert x[1, 9, 1:].tolist() == [eta_t.min, phi_t.min]
    assert encoding.PT_SCALE.unit == 64.0


def test_standardizer_masks_padding_and_round_trips(tmp_path, particles):
    st = encoding.Standardizer.fit(particles)
    z = st.transform(particles)
    mask = schema.input_mask(particles)
    assert (z[~mask] == 0).all()
    real = z[:, 3:6][mask[:, 3:6][:, 0]]  # e1 over events that have one
    assert abs(real[:, 0].mean()) < 1e-5 and real[:, 0].std() == pytest.approx(1.0, rel=1e-4)
    st.save(tmp_path / "st.json")
    assert encoding.Standardizer.load(tmp_path / "st.json") == st
    (tmp_path / "bad.json").write_text('{"mean": [0]}')
    with pytest.raises(ValueError, match="bad.json"):
        encoding.Standardizer.load(tmp_path / "bad.json")
