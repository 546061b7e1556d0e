"""Issue 23: every setting of every configuration object goes through one validator.

The walk below finds the numeric and boolean fields by their annotations, so a field added
later is walked too; each bad value must be a ``TypeError`` or ``ValueError`` whose message
names the field (and nothing may be accepted to fail later inside a fit).
"""

from __future__ import annotations

import dataclasses
import math

import pytest

import bayesreg as br
from bayesreg._validation import Setting, check_settings

CONFIGS = [br.MAP, br.Exact, br.LaplaceApprox, br.VI, br.NUTS, br.MCDropout, br.Ensemble,
           br.SWAG, br.SGLD]


def _kind(field) -> str | None:
    words = str(field.type).replace("|", " ").split()
    if "bool" in words:
        return "bool"
    if "int" in words or "float" in words:
        return "number"
    return None


def _cases():
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            kind = _kind(f)
            if kind is None:
                continue
            optional = "None" in str(f.type)
            if kind == "bool":
                bad = ["yes", 1, math.nan]
            else:
                bad = [math.nan, math.inf, -math.inf, -1, "x", 1j]
                if "float" not in str(f.type):  # an integer setting: 2.5 is no count
                    bad.append(2.5)
            if not optional:
                bad.append(None)
            for value in bad:
                yield pytest.param(cls, f.name, value, id=f"{cls.__name__}-{f.name}-{value!r}")


CASES = list(_cases())


def test_the_walk_covers_every_number_and_flag():
    """The walk must not be empty for a class whose settings are numbers (a renamed
    annotation would silently skip them)."""
    walked = {(c.values[0].__name__, c.values[1]) for c in CASES}
    for name, field in [("MAP", "lr"), ("MAP", "restore_best"), ("VI", "lr"),
                        ("NUTS", "init_jitter"), ("NUTS", "dense_mass"), ("SGLD", "step_size"),
                        ("SGLD", "init_jitter"), ("Ensemble", "members"), ("SWAG", "momentum"),
                        ("MCDropout", "rate"), ("MCDropout", "drop_input"), ("Exact", "tol"),
                        ("LaplaceApprox", "newton_steps")]:
        assert (name, field) in walked
    assert len(CASES) > 300


@pytest.mark.parametrize(("cls", "field", "value"), CASES)
def test_every_bad_setting_is_refused_naming_the_field(cls, field, value):
    with pytest.raises((TypeError, ValueError), match=rf"\b{field}\b") as info:
        cls(**{field: value})
    # the wrong kind of value is a TypeError, a number out of range a ValueError (a field
    # that takes names too, such as MCDropout's rate="auto", may call an unknown name a
    # ValueError)
    takes_names = "str" in str({f.name: f.type for f in dataclasses.fields(cls)}[field])
    if (isinstance(value, str) and not takes_names) or isinstance(value, complex) or (
            value is None):
        assert info.type is TypeError, str(info.value)


@pytest.mark.parametrize(("make", "field"), [
    (lambda: br.SGLD(step_size="big"), "step_size"),
    (lambda: br.SGLD(step_size=math.inf), "step_size"),
    (lambda: br.SGLD(init_jitter=math.nan), "init_jitter"),
    (lambda: br.VI(lr="fast"), "lr"),
    (lambda: br.VI(lr=0), "lr"),
    (lambda: br.VI(optimizer="adam"), "optimizer"),
    (lambda: br.NUTS(num_samples=2.5), "num_samples"),
    (lambda: br.NUTS(num_samples=0), "num_samples"),
    (lambda: br.Ensemble(members=0), "members"),
    (lambda: br.MAP(restore_best="no"), "restore_best"),
    (lambda: br.MAP(validation="x"), "validation"),
    (lambda: br.MCDropout(validation=None), "validation"),
    (lambda: br.Categorical(2.5), "num_classes"),
    (lambda: br.Categorical("3"), "num_classes"),
    (lambda: br.Categorical(1), "num_classes"),
    (lambda: br.Polynomial("3"), "degree"),
    (lambda: br.MLP(hidden=(True,)), "hidden"),
    (lambda: br.MLP(hidden=(8, 2.5)), "hidden"),
    (lambda: br.MLP(dropout="x"), "dropout"),
    (lambda: br.MLP(dropout=math.nan), "dropout"),
    (lambda: br.relu_basis(10, low="0"), "low"),
    (lambda: br.Gaussian(math.inf), "scale"),
    (lambda: br.Gaussian(1.0, loc=math.nan), "loc"),
    (lambda: br.StudentT("3", 1.0), "df"),
    (lambda: br.GaussianLikelihood(noise=-1.0), "noise"),
])
def test_named_cases_from_the_probe(make, field):
    with pytest.raises((TypeError, ValueError), match=rf"\b{field}\b"):
        make()


def test_messages_say_the_class_the_field_and_a_valid_value():
    with pytest.raises(TypeError) as info:
        br.SGLD(step_size="big")
    msg = str(info.value)
    assert msg.startswith("SGLD step_size must be a real number")
    assert "'big' (str)" in msg and "e.g. step_size=0.005" in msg


def test_good_settings_are_kept_and_ints_for_reals_become_floats():
    assert br.SGLD(step_size=1).step_size == 1.0
    assert isinstance(br.MAP(lr=1).lr, float)
    assert br.MAP(lr=1) == br.MAP(lr=1.0)
    assert br.Categorical(3).num_classes == 3
    assert br.NUTS(dense_mass=None).dense_mass is None


def test_setting_checks_a_field_it_is_given():
    @dataclasses.dataclass(frozen=True)
    class Opts:
        width: int = 4

        def __post_init__(self):
            check_settings(self, {"width": Setting("int", 2)})

    assert Opts(3).width == 3
    with pytest.raises(ValueError, match=r"Opts width must be an integer >= 2; got 1 \(int\), "
                                         r"e\.g\. width=4"):
        Opts(1)
