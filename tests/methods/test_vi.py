"""VI's settings (its numbers are checked against the exact posterior in test_bayes_conjugate)."""

import pytest

import bayesreg as br


def test_num_samples_is_the_draw_count_and_num_draws_warns():
    with pytest.warns(DeprecationWarning, match="num_samples") as caught:
        old = br.VI(num_draws=20)
    assert caught[0].filename == __file__
    assert old == br.VI(num_samples=20) and old.num_samples == 20
    assert old.to_dict()["num_samples"] == 20
    with pytest.raises(TypeError, match="both"):
        br.VI(num_draws=20, num_samples=30)
