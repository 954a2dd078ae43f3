"""Transformations built on the sweeps: grad, jvp/vjp, jacobians, custom rules, debug_nans."""
