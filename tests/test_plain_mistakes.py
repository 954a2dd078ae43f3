"""Plain mistakes at the public functions get an error that names the function
and what it expected (they were numpy's ufunc errors, an AttributeError for a
method of None, "'float' object is not iterable", os's bare TypeError)."""

import math

import pytest

import fmicrograd as fm


@pytest.mark.parametrize("call,match", [
    (lambda: fm.exp("1.0"), "fm.exp: got str '1.0'; expected a number"),
    (lambda: fm.maximum(0.5, "a"), "fm.maximum: got str 'a'"),
    (lambda: fm.power(2, "a"), "fm.power: got str 'a'"),
    (lambda: fm.hypot(None, 1.0), "fm.hypot: got NoneType None"),
    (lambda: fm.sum(3.0), "fm.sum expects a sequence.*got float 3.0"),
    (lambda: fm.mean(None), "fm.mean expects a sequence.*got NoneType"),
])
def test_a_function_names_itself_and_what_it_expected(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_an_int_beyond_float64_added_to_a_node_is_infinite_as_in_the_functions():
    assert (fm.Var(2.0) + 10 ** 400).value == math.inf == fm.exp(10 ** 400)
    assert (fm.Var(2.0) * -10 ** 400).value == -math.inf


def test_jit_static_argnames_and_io_save_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="static_argnames must be a str or a tuple of str, got 3"):
        fm.jit(lambda x: x, static_argnames=3)
    path = tmp_path / "model.json"
    with pytest.raises(TypeError, match=r"fm\.io\.save\(path, tree\).*got dict.*swapped"):
        fm.io.save({"w": 1.0}, path)
    assert not path.exists()
    fm.io.save(path, {"w": 1.0})
    assert fm.io.load(path) == {"w": 1.0}


def test_third_review_cases():
    import decimal

    import numpy as np

    from fmicrograd.testing import check_grads

    for bad in ({"atol": "1e-5"}, {"eps": decimal.Decimal("0.001")}, {"eps": 10 ** 400},
                {"atol": np.True_}):
        with pytest.raises(ValueError, match="must be a finite number"):
            check_grads(fm.tanh, (0.5,), **bad)  # (a crash inside, or OverflowError)
    check_grads(fm.tanh, (0.5,), eps=np.array(1e-3))
    with pytest.raises(ValueError, match="got b'n'"):
        fm.jit(lambda x: x, static_argnames=b"n")
    with pytest.raises(TypeError, match="fm.exp: got dict"):
        fm.exp({"a": 1.0})
    for metrics in (0, False, ""):  # (accepted as no metrics)
        with pytest.raises(TypeError, match="metrics must be a dict"):
            fm.train.fit(lambda p, b: p["w"] ** 2, {"w": 1.0}, fm.optim.sgd(0.1), [1.0],
                         epochs=1, metrics=metrics)


def test_one_examples_cross_entropy_checks_its_reduction():
    # the one-example path returned before the check: "avg" gave 1.313 with no error
    with pytest.raises(ValueError, match="reduction must be one of .*got 'avg'"):
        fm.losses.softmax_cross_entropy([1.0, 2.0], 0, reduction="avg")
    assert fm.losses.softmax_cross_entropy([1.0, 2.0], 0, reduction="sum") == \
        fm.losses.softmax_cross_entropy([1.0, 2.0], 0)
