"""``.value`` of a node computed from a traced value, read while ``jit`` or
``to_torch`` traces, is a ``TypeError``: the compiled code would freeze the
trace's number (until round 29 it did, silently)."""

import pytest

import fmicrograd as fm


def _twice_value_times(x):
    return (x * 2.0).value * x


@pytest.mark.parametrize("wrap", [
    lambda f: fm.jit(f),
    lambda f: fm.jit(fm.grad(f)),
    lambda f: fm.jit(lambda x: fm.sum(fm.vmap(f)((x, x + 1.0)))),
    lambda f: fm.jit(fm.jit(f)),
], ids=["jit", "jit(grad)", "jit(vmap)", "jit(jit)"])
def test_value_of_a_computed_node_under_jit_is_an_error(wrap):
    with pytest.raises(TypeError, match=r"x\.value on a value that fm\.jit is tracing"):
        wrap(_twice_value_times)(3.0)


def test_value_of_a_computed_node_under_to_torch_is_an_error():
    torch = pytest.importorskip("torch")
    g = fm.to_torch(_twice_value_times)
    with pytest.raises(TypeError, match=r"fm\.to_torch is tracing"):
        g(torch.tensor([3.0, 5.0], dtype=torch.float64))


def test_without_a_trace_value_is_the_number():
    assert fm.grad(_twice_value_times)(3.0) == 6.0  # a constant copy, as documented
    assert _twice_value_times(fm.Var(5.0)).value == 50.0
    assert fm.vmap(_twice_value_times)((3.0, 5.0)) == (18.0, 50.0)


def test_a_node_that_depends_on_no_traced_value_reads_under_jit():
    outer = fm.Var(2.0) * 3.0

    def f(x):
        scale = (fm.Const(2.0) * 3.0).value + outer.value  # constants: 12.0 on every call
        return x * scale

    jf = fm.jit(f)
    assert (jf(1.0), jf(2.0)) == (12.0, 24.0)


def test_a_node_built_in_a_trace_reads_after_it():
    kept = []

    def f(x):
        y = x * 2.0
        kept.append(y)
        return y + 1.0

    fm.jit(f)(4.0)
    assert kept[0].value == 8.0


def test_compiled_numbers_are_unchanged():
    def f(x, w):
        h = fm.tanh(fm.dot([x, x * x], [w, w + 1.0]))
        return h * h + fm.relu(x - w)

    jf, jg = fm.jit(f), fm.jit(fm.grad(f, argnums=(0, 1)))
    for x, w in [(0.3, -1.2), (2.0, 0.5), (-1.5, 0.25)]:
        assert jf(x, w) == f(x, w)
        assert jg(x, w) == fm.grad(f, argnums=(0, 1))(x, w)


def test_fm_trace_freezes_nothing_so_value_reads():
    assert fm.trace(lambda x: x * (x * 2.0).value)(3.0).value == 18.0


def test_a_thread_the_function_starts_is_checked_too():
    import threading

    caught = []

    def f(x):
        y = x * 2.0

        def read():
            try:
                caught.append(y.value)
            except TypeError as e:
                caught.append(e)

        t = threading.Thread(target=read)
        t.start()
        t.join()
        return x * y

    assert fm.jit(f)(3.0) == 18.0
    assert len(caught) == 1 and "fm.jit is tracing" in str(caught[0])  # (not the number)


def test_value_of_a_per_example_where_under_jit_is_an_error():
    def f(x):
        per = fm.vmap(lambda e: e * fm.where(e > 3.5, e, e * 2.0).value)((x, x + 1.0))
        return fm.sum(per)

    assert f(5.0) == 61.0  # without jit: the numbers of this call
    with pytest.raises(TypeError, match="fm.jit is tracing"):
        fm.jit(f)(3.0)


def test_the_error_says_how_to_print():
    with pytest.raises(TypeError, match=r'print\(f"\{x:\.4f\}"\)'):
        fm.jit(_twice_value_times)(3.0)
