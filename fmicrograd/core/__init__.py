"""The engine: frozen graph nodes, IEEE scalar maths, the rule table and the sweeps."""
