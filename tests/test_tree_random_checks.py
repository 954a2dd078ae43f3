"""fm.tree and fm.random refuse what they silently mishandled or answered
with Python's or numpy's own errors (an outside probe found each)."""

import numpy as np
import pytest

import fmicrograd as fm

R = fm.random
KEY = R.key(0)


def test_at_refuses_a_part_picked_twice_and_an_empty_pick():
    # replace_fn ran twice on one part ((4.0, 1.0) gave (6.0, 1.0)); () gave "'float' object
    # is not iterable"
    with pytest.raises(ValueError, match=r"picked the same part twice \(\[0\], parts 0 and 1\)"):
        fm.tree.at(lambda s: (s[0], s[0]), (4.0, 1.0), replace_fn=lambda v: v + 1)
    with pytest.raises(ValueError, match="picked no part"):
        fm.tree.at(lambda s: (), (1.0, 2.0), 5.0)
    assert fm.tree.at(lambda s: (s[0], s[1]), (4.0, 1.0), replace_fn=lambda v: v + 1) == (5.0, 2.0)


@pytest.mark.parametrize("items, error, message", [
    ([(np.array([1.0, 2.0]),), (np.array([3.0, 4.0, 5.0]),)], ValueError,
     r"leaf at \[0\] has different shapes in the trees \(\(2,\), \(3,\)\)"),
    ([(np.array(["a"]),), (np.array(["b"]),)], TypeError,
     r"leaf at \[0\] does not convert to float64"),
    ([(10 ** 400,), (1.0,)], TypeError, r"leaf at \[0\] does not convert to float64"),
])
def test_stack_names_the_leaf_that_does_not_stack(items, error, message):
    with pytest.raises(error, match=message):
        fm.tree.stack(items)


def test_a_names_function_with_too_few_names_is_an_error():
    # flatten_with_paths dropped the third leaf; map_with_path failed in the constructor
    class Three:
        def __init__(self, a, b, c):
            self.a, self.b, self.c = a, b, c

    fm.tree.register(Three, lambda t: ((t.a, t.b, t.c), None), lambda m, ch: Three(*ch),
                     names=lambda m, n: (".a", ".b"))
    with pytest.raises(ValueError, match="gave 2 names for its 3 children"):
        fm.tree.flatten_with_paths(Three(1.0, 2.0, 3.0))


@pytest.mark.parametrize("data", [1.5, "7", True, None])
def test_fold_in_takes_ints_only(data):
    # 1.5 and "7" and True folded in as 1, 7 and 1; None raised int()'s own error
    with pytest.raises(TypeError, match="fold_in: data must be an int"):
        R.fold_in(KEY, data)


@pytest.mark.parametrize("call, message", [
    (lambda: R.uniform(KEY, -3), "uniform: n must be a non-negative int, got -3"),
    (lambda: R.normal(KEY, -2), "normal: n must be a non-negative int"),
    (lambda: R.permutation(KEY, -3), "permutation: n must be a non-negative int"),
    (lambda: R.uniform(KEY, True), "uniform: n must be a non-negative int, got True"),
    (lambda: R.uniform(KEY, 2.0), "uniform: n must be a non-negative int, got 2.0"),
    (lambda: R.uniform(KEY, 5, 1.0, 0.0), "needs low < high"),
    (lambda: R.normal(KEY, 3, std=-1.0), "std must be >= 0"),
])
def test_sizes_and_ranges_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_uniform_stays_below_high_and_shuffle_names_itself():
    high = 1.0 + 4 * 2.0 ** -52  # where rounding gave exactly high one draw in eight
    assert max(R.uniform(KEY, 20000, 1.0, high)) < high
    with pytest.raises(TypeError, match="fm.random.shuffle: expected a Key"):
        R.shuffle(0, [1, 2])


def test_fold_in_of_an_index_vmap_maps_says_how_to_draw_per_example():
    import numpy as np

    with pytest.raises(TypeError, match=r"fold_in: data must be an int.*under fm\.vmap an index "
                                        r"is one value per example.*draw outside the vmap"):
        fm.vmap(lambda i: fm.random.uniform(fm.random.fold_in(fm.random.key(0), i)))(
            np.arange(3.0))
