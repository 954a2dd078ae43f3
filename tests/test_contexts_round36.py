"""Round 36's control-flow probe: a context copied inside ``fm.vmap`` and
used after it returned kept that vmap's depth (every later vmap there gave
a ``Batched``, and grad an array, in round 35's code)."""

from __future__ import annotations

import asyncio
import contextvars

import fmicrograd as fm


def _copied_inside_vmap():
    ctx = []
    fm.vmap(lambda x: (ctx.append(contextvars.copy_context()), x)[1])((1.0, 2.0))
    return ctx[0]


def test_a_context_copied_inside_vmap_is_clean_after_it_returns():
    ctx = _copied_inside_vmap()
    assert ctx.run(lambda: fm.vmap(lambda x: x * x)((1.0, 2.0, 3.0))) == (1.0, 4.0, 9.0)
    ctx = _copied_inside_vmap()
    loss = lambda w: fm.sum(fm.vmap(lambda x: x * w * w)((1., 2., 3.)))  # noqa: E731
    got = ctx.run(lambda: fm.grad(loss)(2.0))
    assert got == 24.0 and type(got) is float
    ctx = _copied_inside_vmap()
    assert ctx.run(lambda: fm.jit(lambda w: fm.sum(fm.vmap(lambda x: x * w)((1., 2.))))(2.0)) == 6.0


def test_a_task_created_inside_vmap_maps_as_at_the_top_level():
    results = []

    async def later():
        results.append(fm.vmap(lambda x: x * x)((1.0, 2.0, 3.0)))

    async def main():
        tasks = []
        fm.vmap(lambda x: (tasks.append(asyncio.get_running_loop().create_task(later())),
                           x)[1])((1.0, 2.0))
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert results == [(1.0, 4.0, 9.0)]  # (the mapped function runs once per batch)


def test_a_context_copied_inside_a_running_vmap_still_maps_there():
    # (the fix sharp-bits names for a thread: run its work in the caller's context)
    def per_example(x):
        return contextvars.copy_context().run(lambda: x * 2.0)

    assert fm.vmap(per_example)((1.0, 2.0)) == (2.0, 4.0)


def test_a_context_copied_in_an_inner_vmap_keeps_the_outer_running_one():
    # (review 3: it was put back to no vmap at all while the outer one still ran)
    def outer(x):
        ctx = []
        fm.vmap(lambda y: (ctx.append(contextvars.copy_context()), y)[1])((1.0, 2.0))
        return ctx[0].run(lambda: fm.grad(lambda t: t * x)(3.0))

    assert fm.vmap(outer)((1.0, 2.0)) == (1.0, 2.0)
